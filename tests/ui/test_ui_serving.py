"""How the UI is served: at / without credentials, assets under a versioned path with
the right Content-Type and caching, ETags and 304s, while /api keeps its auth."""

import re

import requests


def page(broker):
    return requests.get(broker.base + "/", timeout=10)


def assets(html):
    return re.findall(r'(?:href|src)="(static/[^"]+)"', html)


def test_login_page_needs_no_credentials(broker):
    r = page(broker)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<div id=\"app\"" in r.text
    assert requests.get(broker.base + "/index.html", timeout=10).text == r.text


def test_api_still_needs_credentials(broker):
    r = requests.get(broker.base + "/api/overview", timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert broker.api("GET", "/api/overview").status_code == 200
    assert broker.api("GET", "/api/overview", auth=("guest", "wrong")).status_code == 401


def test_page_is_revalidated_with_an_etag(broker):
    r = page(broker)
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["ETag"]
    again = requests.get(broker.base + "/", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag


def test_page_has_a_strict_content_security_policy(broker):
    h = page(broker).headers
    csp = h["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"


def test_assets_are_versioned_and_immutable(broker):
    html = page(broker).text
    links = assets(html)
    assert any(l.endswith("app.css") for l in links) and any(l.endswith("app.js") for l in links)
    versions = {l.split("/")[1] for l in links}
    assert len(versions) == 1 and re.fullmatch(r"[0-9a-f]{12}", versions.pop())
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
    for link in links:
        r = requests.get(f"{broker.base}/{link}", timeout=10)
        assert r.status_code == 200, link
        assert r.headers["Content-Type"] == types[link[link.rfind("."):]], link
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        r2 = requests.get(f"{broker.base}/{link}", headers={"If-None-Match": r.headers["ETag"]}, timeout=10)
        assert r2.status_code == 304


def test_modules_are_served(broker):
    html = page(broker).text
    js = next(l for l in assets(html) if l.endswith("app.js"))
    prefix = js.rsplit("/", 2)[0]
    app = requests.get(f"{broker.base}/{js}", timeout=10).text
    for mod in re.findall(r"from '\./([^']+)'", app):
        r = requests.get(f"{broker.base}/{prefix}/js/{mod}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript"), mod


def test_an_old_version_path_is_served_but_not_cached(broker):
    r = requests.get(broker.base + "/static/000000000000/css/app.css", timeout=10)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-cache"


def test_unknown_asset_is_404(broker):
    html = page(broker).text
    version = assets(html)[0].split("/")[1]
    assert requests.get(f"{broker.base}/static/{version}/js/nope.js", timeout=10).status_code == 404
    assert requests.get(f"{broker.base}/static/{version}/../Cargo.toml", timeout=10).status_code == 404


def test_ui_uses_no_external_resources(broker):
    html = page(broker).text
    bodies = [html] + [requests.get(f"{broker.base}/{l}", timeout=10).text for l in assets(html)]
    for b in bodies:
        assert not re.search(r"(src|href)=[\"']https?://", b)
        assert "@import url(http" not in b
