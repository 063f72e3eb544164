"""warrenctl's failures: messages on standard error and rabbitmqctl's exit codes."""

import json
import socket
import time

from conftest import free_port, run_ctl


def test_broker_down_is_unavailable(warren):
    url = f"http://127.0.0.1:{free_port()}"
    r = run_ctl(["list_queues"], url)
    assert r.code == 69, r
    assert f"unable to perform an operation on the broker at {url}" in r.err
    assert "The broker is not running" in r.err
    r = run_ctl(["add_user", "x", "y", "--formatter", "json"], url)
    assert r.code == 69, r
    err = json.loads(r.err)
    assert err["result"] == "error" and "unable to perform" in err["message"]


def test_wrong_password_is_refused(warren):
    r = warren.ctl("list_users", password="wrong")
    assert r.code == 77, r
    assert 'refused the credentials of user "guest"' in r.err
    assert "guest\t" not in r.out


def test_missing_rights(warren, uniq):
    user = uniq("u")
    assert warren.ctl("add_user", user, "pw").code == 0
    assert warren.ctl("set_user_tags", user, "monitoring").code == 0
    # A monitoring user may look, not manage users.
    assert warren.ctl("-q", "list_vhosts", user=user, password="pw").code == 0
    r = warren.ctl("add_user", uniq("other"), "pw", user=user, password="pw")
    assert r.code == 77, r
    assert f'user "{user}" is not allowed to do this' in r.err
    r = warren.ctl("delete_user", "guest", user=user, password="pw")
    assert r.code == 77, r
    assert "guest\t[administrator]" in warren.ctl("-s", "list_users").lines


def test_missing_objects(warren, uniq):
    cases = [
        (["delete_user", "nobody"], 67, 'User "nobody" does not exist'),
        (["change_password", "nobody", "x"], 67, 'User "nobody" does not exist'),
        (["set_user_tags", "nobody", "a"], 67, 'User "nobody" does not exist'),
        (["set_permissions", "nobody", ".*", ".*", ".*"], 67, 'User "nobody" does not exist'),
        (["clear_permissions", "nobody"], 67, 'User "nobody" does not exist'),
        (["delete_vhost", "novhost"], 65, "Virtual host 'novhost' does not exist"),
        (["set_permissions", "-p", "novhost", "guest", ".*", ".*", ".*"], 69,
         "Virtual host novhost does not exist"),
        (["set_policy", "-p", "novhost", "p", "^x", '{"max-length":1}'], 65,
         "Virtual host 'novhost' does not exist"),
        (["clear_policy", "nopolicy"], 69, 'Policy "nopolicy" does not exist'),
        (["purge_queue", "noqueue"], 69, "Queue not found: 'noqueue'"),
        (["delete_queue", "noqueue"], 64, "Queue not found: 'noqueue'"),
        (["close_connection", "1.2.3.4:5 -> 6.7.8.9:10", "bye"], 69, "does not exist"),
    ]
    for args, code, message in cases:
        r = warren.ctl(*args)
        assert r.code == code, (args, r)
        assert r.err.startswith("Error:\n"), (args, r)
        assert message in r.err, (args, r)


def test_add_user_refuses_an_existing_user(warren, uniq):
    user = uniq("u")
    assert warren.ctl("add_user", user, "first").code == 0
    r = warren.ctl("add_user", user, "second")
    assert r.code == 70, r
    assert f'User "{user}" already exists' in r.err
    assert warren.api("GET", "/api/whoami", user, "first").status_code == 401  # no tags
    # The first password still stands (the second add did not overwrite it).
    assert warren.ctl("set_user_tags", user, "management").code == 0
    assert warren.api("GET", "/api/whoami", user, "first").status_code == 200


def test_bad_input(warren, tmp_path):
    r = warren.ctl("set_policy", "p", "^x", "{not json")
    assert r.code == 69 and "JSON decoding error" in r.err, r
    r = warren.ctl("set_policy", "p", "^x", '{"no-such-setting": 1}')
    assert r.code == 69 and "are not recognised policy settings" in r.err, r
    r = warren.ctl("set_permissions", "guest", "(", ".*", ".*")
    assert r.code == 69 and "invalid_regexp" in r.err, r
    r = warren.ctl("import_definitions", str(tmp_path / "missing.json"))
    assert r.code == 65 and "Error (argument validation): Bad argument: File" in r.err, r
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    r = warren.ctl("import_definitions", str(bad))
    assert r.code == 65 and "Failed to deserialise input (format: JSON)" in r.err, r


def test_bad_usage(warren):
    for args in (
        ["no_such_command"],
        ["set_policy", "only-a-name"],
        ["add_user", "name-without-password"],
        ["list_queues", "--no-such-option"],
        ["list_queues", "--formatter", "xml"],
        ["export_definitions", "-", "--format", "erlang"],
        ["set_policy", "--priority", "high", "p", "^x", "{}"],
    ):
        r = warren.ctl(*args)
        assert r.code == 64, (args, r)
        assert r.out == "" and r.err, (args, r)
    r = run_ctl(["list_queues"], "https://127.0.0.1:1")
    assert r.code == 64 and "plain http://" in r.err, r


def test_help_and_version_succeed():
    r = run_ctl(["--help"], None, None, None)
    assert r.code == 0 and "list_queues" in r.out and "set_policy" in r.out, r
    r = run_ctl(["--version"], None, None, None)
    assert r.code == 0 and r.out.startswith("warrenctl "), r


def test_a_broker_that_does_not_answer_times_out():
    # Accepts the connection, never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        started = time.time()
        r = run_ctl(["-t", "1", "list_vhosts"], url)
        assert r.code == 75, r
        assert "did not answer in time" in r.err
        assert time.time() - started < 10
