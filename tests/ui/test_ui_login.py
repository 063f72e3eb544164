"""Logging in and out: credentials checked against the API, kept in sessionStorage."""

from selenium.webdriver.common.keys import Keys


def login(ui, user, password):
    ui.fill(ui.wait_css("#login-username"), user)
    ui.fill(ui.wait_css("#login-password"), password)
    ui.click("#login-submit")


def test_login_opens_the_overview(ui):
    ui.open(login=False)
    login(ui, "guest", "guest")
    ui.wait_text("main h1", "Overview")
    assert ui.wait_css("#username").text == "guest"
    token = ui.d.execute_script("return sessionStorage.getItem('warren.auth')")
    assert token == "Z3Vlc3Q6Z3Vlc3Q="  # base64("guest:guest"), as RabbitMQ's UI keeps it
    assert ui.d.execute_script("return localStorage.getItem('warren.auth')") is None


def test_wrong_password_shows_the_error(ui):
    ui.open(login=False)
    login(ui, "guest", "not-the-password")
    err = ui.wait_css("#login-error")
    assert "Login failed" in err.text
    assert ui.css("#login-username")  # still on the login page
    assert ui.d.execute_script("return sessionStorage.getItem('warren.auth')") is None


def test_user_without_management_tag_is_refused(ui, broker, uniq):
    name = uniq("u")
    assert broker.api("PUT", f"/api/users/{name}", {"password": "pw", "tags": ""}).status_code == 201
    ui.open(login=False)
    login(ui, name, "pw")
    assert "Not management user" in ui.wait_css("#login-error").text
    broker.api("DELETE", f"/api/users/{name}")


def test_enter_submits_and_session_survives_a_reload(ui):
    ui.open(login=False)
    ui.fill(ui.wait_css("#login-username"), "guest")
    ui.wait_css("#login-password").send_keys("guest", Keys.ENTER)
    ui.wait_text("main h1", "Overview")
    ui.go("queues")
    ui.wait_text("main h1", "Queues")
    ui.d.refresh()
    ui.wait_text("main h1", "Queues")


def test_logout_forgets_the_credentials(ui):
    ui.open("")
    ui.click("#logout")
    ui.wait_css("#login-username")
    assert ui.d.execute_script("return sessionStorage.getItem('warren.auth')") is None
    ui.d.refresh()
    ui.wait_css("#login-username")


def test_a_deleted_user_is_sent_back_to_login(ui, broker, uniq):
    name = uniq("admin")
    assert broker.api("PUT", f"/api/users/{name}", {"password": "pw", "tags": "administrator"}).status_code == 201
    ui.open(login=False)
    login(ui, name, "pw")
    ui.wait_text("main h1", "Overview")
    broker.api("DELETE", f"/api/users/{name}")
    ui.click("a[data-tab='queues']")
    err = ui.wait_css("#login-error", timeout=20)
    assert "session has ended" in err.text
