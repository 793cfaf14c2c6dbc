"""The nginx upstream file: render/parse round trip, names, addresses and the pure switch plan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotswap_deploy import setup
from hotswap_deploy.proxy import (
    SUN_PATH_MAX,
    NginxProxy,
    Proxy,
    Upstream,
    include_path,
    nginx_reload_argv,
    nginx_test_argv,
    parse,
    placeholder_socket,
    render,
    upstream_name,
)


@pytest.mark.parametrize("upstream", [
    Upstream(primary=["127.0.0.1:49153"], backup=[]),
    Upstream(primary=["127.0.0.1:49153", "127.0.0.1:49154"], backup=["127.0.0.1:49150"]),
    Upstream(primary=["[::1]:8080"], backup=["localhost:3000", "backend-1:80"]),
])
def test_render_parse_round_trip(upstream: Upstream) -> None:
    assert parse(render("demo", "backend", upstream)) == upstream


def test_render_shape() -> None:
    text = render("loyalty", "backend", Upstream(primary=["127.0.0.1:49153"], backup=["127.0.0.1:49150"]))
    assert "upstream loyalty_backend {" in text
    assert "    server 127.0.0.1:49153 max_fails=0;" in text
    assert "    server 127.0.0.1:49150 backup max_fails=0;" in text
    assert "keepalive 16;" in text
    assert text.index("49153") < text.index("49150")


def test_parse_hand_written_file() -> None:
    text = """
    # written by hand before the first deploy
    upstream loyalty_backend {
        server 127.0.0.1:3000 weight=2 max_fails=3 fail_timeout=5s;  # the current container
        server 127.0.0.1:3001   backup;
    }
    """
    assert parse(text) == Upstream(primary=["127.0.0.1:3000"], backup=["127.0.0.1:3001"])


@pytest.mark.parametrize("text", ["", "server 127.0.0.1:1;", "upstream a { server 127.0.0.1:1; }\n"
                                  "upstream b { server 127.0.0.1:2; }", "upstream a { keepalive 1; }"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "a:1; include /etc/x",
                                     "a b:1", "a:1}", "", "unix:/tmp/s.sock", ":80",
                                     "unix:/tmp/../x.placeholder.sock", "unix:/a b.placeholder.sock",
                                     "unix:x.placeholder.sock"])
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        Upstream(primary=[address], backup=[])
    with pytest.raises(ValueError, match="host:port"):
        Upstream(primary=["127.0.0.1:1"], backup=[address])


def test_an_upstream_needs_a_primary() -> None:
    with pytest.raises(ValueError, match="primary"):
        Upstream(primary=[], backup=["127.0.0.1:1"])


@pytest.mark.parametrize(("project", "service"), [("demo", "a b"), ("de;mo", "web"), ("", "web"),
                                                  ("demo", "-web"), ("demo", "../web")])
def test_bad_names_are_rejected(project: str, service: str) -> None:
    with pytest.raises(ValueError, match="may hold only"):
        render(project, service, Upstream(primary=["127.0.0.1:1"], backup=[]))


def test_names_and_paths() -> None:
    assert upstream_name("loyalty-app", "backend") == "loyalty-app_backend"
    assert include_path(Path("/etc/nginx/ci-actions"), "loyalty-app", "backend") == Path(
        "/etc/nginx/ci-actions/loyalty-app-backend.conf")


def test_argv_builders_and_plan(tmp_path: Path) -> None:
    config = tmp_path / "nginx.conf"
    assert nginx_test_argv("nginx", config) == ["nginx", "-t", "-c", str(config)]
    assert nginx_reload_argv("/usr/sbin/nginx", config) == ["/usr/sbin/nginx", "-s", "reload", "-c",
                                                            str(config)]
    proxy = NginxProxy(config, tmp_path, "demo")
    assert isinstance(proxy, Proxy)
    upstream = Upstream(primary=["127.0.0.1:2"], backup=["127.0.0.1:1"])
    assert parse(render("demo", "web", upstream)) == upstream
    plan = proxy.plan("web")
    assert plan.path == tmp_path / "demo-web.conf"
    assert plan.describe() == [f"write {tmp_path}/demo-web.conf", f"nginx -t -c {config}",
                               f"nginx -s reload -c {config}"]
    assert not plan.path.exists()  # planning touches nothing


def test_current_reads_the_file(tmp_path: Path) -> None:
    proxy = NginxProxy(tmp_path / "nginx.conf", tmp_path, "demo")
    assert proxy.current("web") is None
    upstream = Upstream(primary=["127.0.0.1:2"], backup=[])
    (tmp_path / "demo-web.conf").write_text(render("demo", "web", upstream))
    assert proxy.current("web") == upstream


def test_the_placeholder_is_a_unix_socket_beside_the_upstream_files(tmp_path) -> None:
    proxy = NginxProxy(tmp_path / "nginx.conf", tmp_path / "up", "shop")
    placeholder = proxy.placeholder()
    assert placeholder == Upstream([f"unix:{tmp_path}/up/shop.placeholder.sock"], [])
    assert parse(render("shop", "web", placeholder)) == placeholder


# deploy setup's plan (pure)


def test_setup_plan_writes_placeholder_missing_upstreams_and_the_site(tmp_path) -> None:
    proxy = NginxProxy(tmp_path / "nginx.conf", tmp_path / "up", "shop", prefix=tmp_path)
    (tmp_path / "up").mkdir()
    proxy.path("backend").write_text(render("shop", "backend", Upstream(["127.0.0.1:3000"], [])))
    plan = setup.plan_setup(proxy, ["backend", "frontend"], {"backend": "/api/", "frontend": "/"}, "8080")
    assert list(plan.writes) == [tmp_path / "up/shop.placeholder.conf", tmp_path / "up/shop-frontend.conf",
                                 tmp_path / "up/shop.site.conf"]
    assert plan.kept == [tmp_path / "up/shop-backend.conf"]
    assert parse(plan.writes[tmp_path / "up/shop-frontend.conf"]) == proxy.placeholder()
    placeholder = plan.writes[tmp_path / "up/shop.placeholder.conf"]
    assert f"listen unix:{tmp_path}/up/shop.placeholder.sock;" in placeholder and "return 503" in placeholder
    site = plan.writes[tmp_path / "up/shop.site.conf"]
    assert "listen 8080;" in site and site.index("location /api/ {") < site.index("location / {")
    assert "proxy_pass http://shop_backend;" in site and "proxy_pass http://shop_frontend;" in site
    assert plan.test == ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    assert plan.dump[1] == "-T" and plan.reload[1:3] == ["-s", "reload"]


@pytest.mark.parametrize(("lines", "services", "message"), [
    ([], ["backend", "frontend"], "routes: give one `service: /path/` line per service"),
    (["backend /api/"], ["backend"], "routes: entry 1 is not `service: /path/` for one of backend"),
    (["backend: api"], ["backend"], "routes: backend's path 'api' must start with /"),
    (["backend: /a/../b/"], ["backend"], "routes: backend's path '/a/../b/' must start with /"),
    (["a: /x/", "b: /x/"], ["a", "b"], "routes: /x/ is routed twice"),
    (["a: /x/"], ["a", "b"], "routes: no route for b"),
])
def test_bad_routes_are_named(lines, services, message) -> None:
    with pytest.raises(setup.SetupError, match=re.escape(message)):
        setup.parse_routes(lines, services)


def test_one_service_alone_gets_the_root() -> None:
    assert setup.parse_routes([], ["web"]) == {"web": "/"}


@pytest.mark.parametrize("listen", ["80", "127.0.0.1:8080", "[::1]:443", "localhost:80"])
def test_good_listen_values(listen) -> None:
    assert setup.check_listen(listen) == listen


@pytest.mark.parametrize("listen", ["", "0", "70000", "80 default_server", "80;", "a:b"])
def test_bad_listen_values_are_named(listen) -> None:
    with pytest.raises(setup.SetupError, match="listen: "):
        setup.check_listen(listen)


def test_the_placeholder_socket_fits_a_unix_socket_path_whatever_the_upstream_dir():
    """nginx refused the config ("too long path in the unix domain socket") under a deep upstream dir."""
    short = placeholder_socket(Path("/etc/nginx/ci-actions"), "shop")
    assert short == Path("/etc/nginx/ci-actions/shop.placeholder.sock")
    deep = Path("/tmp/pytest-of-root/pytest-50/test_setup_then_a_first_deploy0/nginx/conf/ci-actions")
    socket = placeholder_socket(deep, "hd-96a1d788")
    assert len(bytes(socket)) <= SUN_PATH_MAX and socket.parent == Path("/run/ci-actions")
    assert socket != placeholder_socket(deep / "other", "hd-96a1d788")  # one per upstream dir
