"""Authentication and authorisation: HTTP Basic, tags (management, policymaker,
monitoring, administrator) and vhost permissions decide access as in RabbitMQ 3.10,
which answers a missing tag or permission with 401 `not_authorised`."""

import pytest
import requests

from helpers import make_user, q


def test_no_credentials_is_401_with_a_challenge_and_no_body(api):
    r = requests.get(api.url("/api/overview"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'
    assert r.content == b""


def test_wrong_password_is_401_login_failed(api):
    r = api.get("/api/overview", auth=("guest", "nope"))
    assert r.status_code == 401
    assert r.json() == {"error": "not_authorized", "reason": "Login failed"}
    assert "www-authenticate" in r.headers


def test_unknown_user_and_other_schemes_fail_login(api):
    assert api.get("/api/overview", auth=("nobody", "x")).status_code == 401
    r = requests.get(api.url("/api/overview"), headers={"Authorization": "Bearer abc"})
    assert r.status_code == 401
    assert r.json()["error"] == "not_authorized"


def test_unknown_path_is_404_even_without_credentials(api):
    r = requests.get(api.url("/api/nope"))
    assert r.status_code == 404
    assert r.json() == {"error": "Object Not Found", "reason": "Not Found"}


def test_user_without_tags_is_not_a_management_user(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="")
    r = api.as_user(u, "pw").get("/api/overview")
    assert r.status_code == 401
    assert r.json() == {"error": "not_authorised", "reason": "Not management user"}
    assert api.as_user(u, "pw").get("/api/whoami").status_code == 401


@pytest.mark.parametrize(
    "path,reason",
    [
        ("/api/users", "Not administrator user"),
        ("/api/permissions", "Not administrator user"),
        ("/api/definitions", "Not administrator user"),
        ("/api/global-parameters", "Not administrator user"),
        ("/api/nodes", "Not monitor user"),
    ],
)
def test_management_tag_is_refused_admin_and_monitor_endpoints(api, uniq, path, reason):
    u = uniq("m")
    make_user(api, u, tags="management")
    r = api.as_user(u, "pw").get(path)
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "not_authorised", "reason": reason}


def test_management_user_sees_overview_whoami_and_its_vhosts(api, uniq):
    u = uniq("m")
    make_user(api, u, tags="management")
    me = api.as_user(u, "pw")
    assert me.get("/api/overview").status_code == 200
    assert me.get("/api/whoami").json() == {"name": u, "tags": ["management"]}
    assert [v["name"] for v in me.get("/api/vhosts").json()] == ["/"]
    assert me.get("/api/queues/%2F").status_code == 200


def test_vhost_without_permission_is_refused_and_hidden(api, uniq):
    u, v = uniq("m"), uniq("vh")
    make_user(api, u, tags="management", vhost_perms=())
    assert api.put(f"/api/vhosts/{q(v)}").status_code == 201
    try:
        me = api.as_user(u, "pw")
        r = me.get(f"/api/queues/{q(v)}")
        assert r.status_code == 401
        assert r.json()["reason"] == "User not authorised to access virtual host"
        assert me.get(f"/api/exchanges/{q(v)}").status_code == 401
        assert me.get("/api/vhosts").json() == []
        assert me.get("/api/queues").json() == []
        # A vhost that does not exist is a 404, not a refusal.
        assert me.get("/api/queues/no-such-vhost-at-all").status_code == 404
    finally:
        api.delete(f"/api/vhosts/{q(v)}")


def test_monitoring_sees_nodes_and_every_vhost_but_cannot_administer(api, uniq):
    u, v = uniq("mon"), uniq("vh")
    make_user(api, u, tags="monitoring", vhost_perms=())
    assert api.put(f"/api/vhosts/{q(v)}").status_code == 201
    try:
        me = api.as_user(u, "pw")
        assert me.get("/api/nodes").status_code == 200
        names = [x["name"] for x in me.get("/api/vhosts").json()]
        assert "/" in names and v in names
        assert me.get("/api/users").status_code == 401
        assert me.put(f"/api/vhosts/{q(uniq('x'))}").status_code == 401
    finally:
        api.delete(f"/api/vhosts/{q(v)}")


def test_policymaker_manages_policies_management_cannot(api, uniq):
    pm, m = uniq("pm"), uniq("m")
    make_user(api, pm, tags="policymaker")
    make_user(api, m, tags="management")
    name = uniq("pol")
    body = {"pattern": "^zz-none$", "definition": {"max-length": 5}}
    r = api.as_user(m, "pw").put(f"/api/policies/%2F/{q(name)}", body)
    assert r.status_code == 401
    assert r.json()["reason"] == "User not authorised to access object"
    r = api.as_user(pm, "pw").put(f"/api/policies/%2F/{q(name)}", body)
    assert r.status_code == 201, r.text
    assert api.as_user(pm, "pw").delete(f"/api/policies/%2F/{q(name)}").status_code == 204


def test_tags_can_be_a_list_or_comma_separated(api, uniq):
    u = uniq("u")
    assert api.put(f"/api/users/{q(u)}", {"password": "pw", "tags": "monitoring, management"}).status_code == 201
    assert api.get(f"/api/users/{q(u)}").json()["tags"] == ["monitoring", "management"]
    assert api.put(f"/api/users/{q(u)}", {"password": "pw", "tags": ["administrator"]}).status_code == 204
    assert api.as_user(u, "pw").get("/api/users").status_code == 200


def test_deleted_user_can_no_longer_log_in(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="administrator")
    assert api.as_user(u, "pw").get("/api/overview").status_code == 200
    assert api.delete(f"/api/users/{q(u)}").status_code == 204
    r = api.as_user(u, "pw").get("/api/overview")
    assert r.status_code == 401
    assert r.json()["error"] == "not_authorized"


def test_permission_patterns_apply_to_api_declarations(api, uniq):
    u = uniq("u")
    make_user(api, u, tags="management", vhost_perms=())
    r = api.put(f"/api/permissions/%2F/{q(u)}", {"configure": "^allowed\\.", "write": ".*", "read": ".*"})
    assert r.status_code == 201
    me = api.as_user(u, "pw")
    ok_name, bad_name = "allowed." + uniq("q"), uniq("denied")
    try:
        assert me.put(f"/api/queues/%2F/{q(ok_name)}", {}).status_code == 201
        r = me.put(f"/api/queues/%2F/{q(bad_name)}", {})
        assert r.status_code == 401
        assert r.json() == {"error": "not_authorised", "reason": "Access refused."}
        assert api.get(f"/api/queues/%2F/{q(bad_name)}").status_code == 404
    finally:
        api.delete(f"/api/queues/%2F/{q(ok_name)}")
