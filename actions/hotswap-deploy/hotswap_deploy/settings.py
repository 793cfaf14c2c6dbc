"""How a project is deployed: the inputs that stay the same from deploy to deploy.

Each deploy saves them in the project's state folder, so `ci-actions deploy status|rollback` on the
host needs only the project name, and a rollback switches exactly the way the deploy did.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ci_actions.atomic import write_atomic
from ci_actions.compose import Compose
from hotswap_deploy.health import HealthCheck
from hotswap_deploy.proxy import NginxProxy

DEFAULT_KEEP = 3


class SettingsError(Exception):
    """No saved settings for the project, or they cannot be read."""


@dataclass(frozen=True)
class NginxSettings:
    config: Path
    upstream_dir: Path
    binary: str = "nginx"
    prefix: Path | None = None  # `nginx -p`, for a private nginx
    pid_file: Path | None = None  # where its master's pid is, when its config does not say


@dataclass(frozen=True)
class Settings:
    compose: Compose
    services: list[str]
    health: dict[str, HealthCheck]
    state_dir: Path
    strategy: str = "blue-green"
    nginx: NginxSettings | None = None
    migrate: tuple[str, ...] = ()
    watch_seconds: float = 0.0
    keep: int = DEFAULT_KEEP

    def proxy_for(self, project: str) -> NginxProxy | None:
        if self.nginx is None:
            return None
        return NginxProxy(self.nginx.config, self.nginx.upstream_dir, project, self.nginx.binary,
                          prefix=self.nginx.prefix, pid_file=self.nginx.pid_file)

    def to_json(self) -> dict:
        return {"compose": {"files": [str(p) for p in self.compose.files], "project": self.compose.project},
                "services": self.services, "strategy": self.strategy,
                "health": {s: dataclasses.asdict(h) for s, h in self.health.items()},
                "nginx": ({k: v if v is None else str(v) for k, v in dataclasses.asdict(self.nginx).items()}
                          if self.nginx else None),
                "migrate": list(self.migrate), "watch_seconds": self.watch_seconds, "keep": self.keep}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / "settings.json", json.dumps(self.to_json(), indent=2) + "\n")


def load(state_dir: Path, project: str) -> Settings:
    path = state_dir / project / "settings.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"no deploy of {project} is recorded under {state_dir} (no {path}); deploy it "
                            "once with hotswap-deploy, or pass --state-dir") from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from exc
    try:
        nginx = data.get("nginx")
        return Settings(
            compose=Compose(tuple(Path(p) for p in data["compose"]["files"]), data["compose"]["project"]),
            services=data["services"], strategy=data["strategy"],
            health={s: HealthCheck(**h) for s, h in data["health"].items()}, state_dir=state_dir,
            nginx=NginxSettings(Path(nginx["config"]), Path(nginx["upstream_dir"]), nginx["binary"],
                                *(Path(nginx[k]) if nginx.get(k) else None for k in ("prefix", "pid_file")))
            if nginx else None,
            migrate=tuple(data.get("migrate", ())), watch_seconds=data.get("watch_seconds", 0.0),
            keep=data.get("keep", DEFAULT_KEEP))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: not the settings this version saves ({type(exc).__name__}: "
                            f"{exc}); deploy once with hotswap-deploy to write them again") from None
