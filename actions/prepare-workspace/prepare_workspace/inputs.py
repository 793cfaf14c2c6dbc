"""prepare-workspace's inputs, declared once (the step, the CLI and action.yml's check read this table),
and the PrepareRequest they make."""

from __future__ import annotations

from ci_actions import declared, workspace
from ci_actions.declared import Input, Values
from prepare_workspace.prepare import PrepareRequest

INPUTS = declared.table(
    Input("package-dirs", "Package directories (each with package.json and package-lock.json), one per line.",
          required=True, many=True, flag="package-dir"),
    Input("install-command", "The install command run in each package dir on a cache miss.",
          default=workspace.DEFAULT_INSTALL, parse=declared.argv),
    Input("prod-layer", "Also keep a production-only install (the install command plus --omit=dev) in the "
          "store, for build jobs.", default="false", parse=declared.boolean),
    Input("prisma-schema", "Prisma schema files, one per line; each is generated once, cached by schema "
          "digest, Prisma version and output path.", many=True),
    Input("prisma-generate-command", "Overrides `npx --no-install prisma generate --schema=<schema>` (run in "
          "the schema's package dir).", parse=declared.argv),
    Input("exclude", "Names or workspace-relative paths left out of the artifact, one per line (restored "
          "from the store instead).", default="node_modules", many=True),
    Input("retention", "Artifacts of older runs are deleted after this long (s, m, h, d, w).", default="1d",
          parse=declared.duration),
    *workspace.STORE_INPUTS,
)


def request(values: Values, where: workspace.Where) -> PrepareRequest:
    """What to prepare in the checkout `where.root`, for the step and the CLI alike."""
    return PrepareRequest(
        workspace=where.root, package_dirs=values["package-dirs"], install_command=values["install-command"],
        prod_layer=values["prod-layer"], prisma_schemas=values["prisma-schema"],
        generate_command=values["prisma-generate-command"] or None, cache_dir=values["cache-dir"],
        workspace_root=values["workspace-root"], exclude=values["exclude"], retention=values["retention"],
        link_mode=values["link-mode"], run=where.run, shared_store=values["shared-store"], scope=where.scope)
