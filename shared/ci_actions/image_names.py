"""How a compose service's images are named and marked: shared by build-images (which tags and labels
them) and hotswap-deploy (which finds `<repository>:<sha>` and reads the commit back)."""

from __future__ import annotations

import re

# The commit an image was built from (OCI): build-images writes it, hotswap-deploy reads it.
REVISION_LABEL = "org.opencontainers.image.revision"
_REPO_INVALID = re.compile(r"[^a-z0-9._/:-]")


def repository_of(image: str) -> str:
    """`host:5000/team/app:tag` -> `host:5000/team/app`: the tag is after the last `:` of the last part."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def sanitise_repository(name: str) -> str:
    """Lower-cased, invalid characters to `-` (metadata-action's `images` handling)."""
    return _REPO_INVALID.sub("-", name.lower())


def service_repository(project: str, service: str, spec: dict) -> str:
    """The repository of a service's images: its `image:` without the tag, else compose's own default
    name `<project>-<service>`."""
    return sanitise_repository(repository_of(spec.get("image") or f"{project}-{service}"))
