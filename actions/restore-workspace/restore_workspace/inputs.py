"""restore-workspace's inputs, declared once (the step, the CLI and action.yml's check read this table),
and the RestoreRequest they make."""

from __future__ import annotations

from ci_actions import declared, workspace
from ci_actions.declared import Input, Values
from restore_workspace.restore import RestoreRequest

INPUTS = declared.table(
    Input("layer", "Which dependencies: all (tests, lint) or prod (builds; needs prepare-workspace's "
          "prod-layer: true).", default="all", choices=workspace.LAYERS),
    *workspace.STORE_INPUTS,
    Input("clean", "Wipe the workspace before unpacking, as actions/checkout does on a runner's job "
          "directory. With false, a workspace holding anything the last restore did not leave (a file added "
          "or changed since, .git's included; a checkout no restore made) is refused, and the error lists "
          "it.", default="true", parse=declared.boolean),
    Input("install-command", "Rebuilds a dependency layer the store no longer has (the prod layer adds "
          "--omit=dev). The artifact never says what to run; give the same command as prepare-workspace so "
          "the rebuild is saved.", default=workspace.DEFAULT_INSTALL, parse=declared.argv),
    Input("prisma-generate-command", "Rebuilds a Prisma client the store no longer has; empty means `npx "
          "--no-install prisma generate --schema=<schema>`.", parse=declared.argv),
)


def request(values: Values, where: workspace.Where) -> RestoreRequest:
    """What to restore into the checkout `where.root`, for the step and the CLI alike."""
    commands = workspace.Commands(tuple(values["install-command"]),
                                  tuple(values["prisma-generate-command"]) or None)
    return RestoreRequest(where.root, values["workspace-root"], values["cache-dir"], values["layer"],
                          values["link-mode"], where.run, commands, clean=values["clean"],
                          shared_store=values["shared-store"], scope=where.scope)
