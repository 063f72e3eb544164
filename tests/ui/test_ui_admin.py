"""Admin in the UI: users, permissions, virtual hosts, policies."""

from conftest import q


def test_add_and_delete_a_user(ui, broker, uniq):
    name = uniq("user")
    ui.open("users")
    ui.click("#add-user")
    ui.fill(ui.field("username"), name)
    ui.fill(ui.field("password"), "s3cret")
    ui.fill(ui.field("password-confirm"), "s3cret")
    ui.button("monitoring").click()
    ui.button("Add user").click()
    ui.toast("ok", "User added")
    row = ui.wait(lambda: next((r for r in ui.css("main tbody tr") if r.get_attribute("data-name") == name), None), what="the user's row")
    assert "monitoring" in row.text
    u = broker.get(f"/api/users/{q(name)}")
    assert u["tags"] in (["monitoring"], "monitoring")
    # The new user can log in to the API with that password.
    assert broker.api("GET", "/api/whoami", auth=(name, "s3cret")).json()["name"] == name

    ui.press("Delete", lambda: ui.row_named(name))
    ui.confirm("Delete")
    ui.toast("ok", "User deleted")
    ui.wait(lambda: not any(r.get_attribute("data-name") == name for r in ui.css("main tbody tr")), what="the row to go")
    assert not broker.exists(f"/api/users/{q(name)}")


def test_mismatched_passwords_are_refused(ui, broker, uniq):
    name = uniq("user")
    ui.open("users")
    ui.click("#add-user")
    ui.fill(ui.field("username"), name)
    ui.fill(ui.field("password"), "a")
    ui.fill(ui.field("password-confirm"), "b")
    ui.button("Add user").click()
    assert "do not match" in ui.wait_css("dialog[open] .form-error").text
    assert not broker.exists(f"/api/users/{q(name)}")


def test_user_permissions(ui, broker, uniq):
    name = uniq("user")
    assert broker.api("PUT", f"/api/users/{q(name)}", {"password": "pw", "tags": ""}).status_code == 201
    ui.open(f"users/{q(name)}")
    ui.wait_text("main h1", name)
    card = ui.wait_css("#permissions-card")
    ui.wait_text("#permissions-card", "No permissions")
    form = card.find_element("css selector", "form")
    ui.fill(ui.field("configure", form), "^app\\.")
    ui.button("Set permission", form).click()
    ui.toast("ok", "Permission set")
    row = ui.wait_text("#permissions-card tbody tr", "^app\\.")
    p = broker.get(f"/api/permissions/%2F/{q(name)}")
    assert (p["configure"], p["write"], p["read"]) == ("^app\\.", ".*", ".*")
    ui.press("Clear", lambda: ui.text_row("#permissions-card tbody tr", "^app\\."))
    ui.toast("ok", "Permission cleared")
    ui.wait_text("#permissions-card", "No permissions")
    assert not broker.exists(f"/api/permissions/%2F/{q(name)}")
    broker.api("DELETE", f"/api/users/{q(name)}")


def test_add_and_delete_a_vhost(ui, broker, uniq):
    name = uniq("vhost")
    ui.open("vhosts")
    ui.click("#add-vhost")
    ui.fill(ui.field("name"), name)
    ui.fill(ui.field("description"), "made in the UI")
    ui.button("Add virtual host").click()
    ui.toast("ok", "Virtual host added")
    row = ui.wait(lambda: next((r for r in ui.css("main tbody tr") if r.get_attribute("data-name") == name), None), what="the vhost's row")
    assert "made in the UI" in row.text
    assert broker.get(f"/api/vhosts/{q(name)}")["description"] == "made in the UI"
    # It appears in the vhost selector.
    ui.wait(lambda: name in ui.wait_css("#vhost-select").text, timeout=20, what="the vhost in the selector")

    ui.press("Delete", lambda: ui.row_named(name))
    ui.confirm("Delete")
    ui.toast("ok", "Virtual host deleted")
    ui.wait(lambda: not any(r.get_attribute("data-name") == name for r in ui.css("main tbody tr")), what="the row to go")
    assert not broker.exists(f"/api/vhosts/{q(name)}")


def test_add_edit_and_delete_a_policy(ui, broker, uniq):
    name = uniq("policy")
    ui.open("policies")
    ui.click("#add-policy")
    ui.fill(ui.field("name"), name)
    ui.fill(ui.field("pattern"), "^ui-policy\\.")
    ui.select(ui.field("apply-to"), "queues")
    ui.button("Max length").click()
    values = [e for e in ui.css("dialog[open] [name='def-value']") if e.is_displayed()]
    ui.fill(values[0], "100")
    ui.button("Add policy").click()
    ui.toast("ok", "Policy added")
    row = ui.wait(lambda: next((r for r in ui.css("main tbody tr") if r.get_attribute("data-name") == name), None), what="the policy's row")
    assert "max-length: 100" in row.text
    p = broker.get(f"/api/policies/%2F/{q(name)}")
    assert p["definition"] == {"max-length": 100} and p["pattern"] == "^ui-policy\\." and p["apply-to"] == "queues"

    # A queue the pattern matches gets the policy, shown on its page.
    assert broker.api("PUT", "/api/queues/%2F/ui-policy.q", {}).status_code == 201
    ui.go("queues/%2F/ui-policy.q")
    ui.wait_text("main dl", name, timeout=20)
    broker.api("DELETE", "/api/queues/%2F/ui-policy.q")

    ui.go("policies")
    row = ui.wait(lambda: next((r for r in ui.css("main tbody tr") if r.get_attribute("data-name") == name), None), what="the policy's row")
    ui.press("Edit", lambda: ui.row_named(name))
    ui.fill(ui.field("priority"), "5")
    ui.button("Update policy").click()
    ui.toast("ok", "Policy updated")
    ui.wait(lambda: broker.get(f"/api/policies/%2F/{q(name)}")["priority"] == 5, what="priority 5")

    row = ui.wait(lambda: next((r for r in ui.css("main tbody tr") if r.get_attribute("data-name") == name), None), what="the policy's row")
    ui.press("Delete", lambda: ui.row_named(name))
    ui.confirm("Delete")
    ui.toast("ok", "Policy deleted")
    ui.wait(lambda: not any(r.get_attribute("data-name") == name for r in ui.css("main tbody tr")), what="the row to go")
    assert not broker.exists(f"/api/policies/%2F/{q(name)}")


def test_policy_errors_show_the_api_reason(ui, broker, uniq):
    name = uniq("policy")
    ui.open("policies")
    ui.click("#add-policy")
    ui.fill(ui.field("name"), name)
    ui.fill(ui.field("pattern"), ".*")
    ui.button("Max length").click()
    values = [e for e in ui.css("dialog[open] [name='def-value']") if e.is_displayed()]
    ui.fill(values[0], "-3")
    ui.button("Add policy").click()
    text = ui.toast("error")
    reason = broker.api("PUT", f"/api/policies/%2F/{q(name)}x", {"pattern": ".*", "definition": {"max-length": -3}}).json()["reason"]
    assert str(reason)[:40] in text
    assert not broker.exists(f"/api/policies/%2F/{q(name)}")


def test_non_admin_sees_no_admin_tab(ui, broker, uniq):
    name = uniq("mgmt")
    assert broker.api("PUT", f"/api/users/{q(name)}", {"password": "pw", "tags": "management"}).status_code == 201
    assert broker.api("PUT", f"/api/permissions/%2F/{q(name)}", {"configure": ".*", "write": ".*", "read": ".*"}).status_code == 201
    try:
        ui.open(login=False)
        ui.fill(ui.wait_css("#login-username"), name)
        ui.fill(ui.wait_css("#login-password"), "pw")
        ui.click("#login-submit")
        ui.wait_text("main h1", "Overview")
        assert not ui.css("a[data-tab='admin']")
        ui.wait_text("#node-card", "monitoring tag")
        ui.go("users")
        ui.wait_text(".empty .title", "Administrators only")
    finally:
        broker.api("DELETE", f"/api/users/{q(name)}")
