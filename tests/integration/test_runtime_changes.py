"""Runtime server changes and reloads together (docs/operations.md, "Runtime
server changes"): a change is kept across reloads while the file leaves its
server as it was, and the file wins once it changes that server; policy
state lives on through runtime changes."""
import http.client

from test_admin import Admin, config, server_path, write_token


def write(j, text):
    for i, p in enumerate(j.ports):
        text = text.replace("{port%d}" % i, str(p))
    with open(j.path, "w") as f:
        f.write(text)


def servers(admin):
    status, out, _ = admin.get("/upstreams/app")
    assert status == 200, out
    return {s["address"]: s for s in out["servers"]}


def changes(admin):
    status, out, _ = admin.get("/config")
    assert status == 200, out
    return {(c["address"], c["change"]) for c in out["runtime_changes"]}


def reload(admin):
    status, out, _ = admin.call("POST", "/reload")
    assert status == 200 and out["applied"], out


def start(junction, backends, tmp_path, n=2):
    bs = backends(3)
    token = write_token(tmp_path)
    j = junction(config(bs[:n], token), nports=2)
    return j, Admin(j.ports[1]), bs, token


def test_runtime_changes_outlive_a_reload_that_leaves_their_servers_alone(junction, backends,
                                                                          tmp_path):
    j, admin, bs, token = start(junction, backends, tmp_path)
    a0, a1, a2 = ("127.0.0.1:%d" % b.port for b in bs)
    assert admin.call("POST", "/upstreams/app/servers", {"address": a2, "weight": 4})[0] == 201
    assert admin.call("PATCH", server_path(a0), {"weight": 9})[0] == 200
    assert admin.call("DELETE", server_path(a1))[0] == 200
    assert changes(admin) == {(a2, "added"), (a0, "changed"), (a1, "removed")}
    # The file changes something else: a route.
    write(j, config(bs[:2], token).replace("path: /hello", "path: /hi"))
    reload(admin)
    s = servers(admin)
    assert set(s) == {a0, a2}
    assert s[a0]["weight"] == 9 and s[a2]["weight"] == 4
    assert changes(admin) == {(a2, "added"), (a0, "changed"), (a1, "removed")}


def test_the_file_wins_for_a_server_it_changes(junction, backends, tmp_path):
    j, admin, bs, token = start(junction, backends, tmp_path)
    a0, a1, a2 = ("127.0.0.1:%d" % b.port for b in bs)
    admin.call("POST", "/upstreams/app/servers", {"address": a2, "weight": 4})
    admin.call("PATCH", server_path(a0), {"drain": True})
    admin.call("DELETE", server_path(a1))
    # The file now lists a2 itself, re-weights a0 and changes a1.
    text = config(bs, token)
    text = text.replace("{ address: 127.0.0.1:%d }" % bs[0].port,
                        "{ address: 127.0.0.1:%d, weight: 7 }" % bs[0].port)
    text = text.replace("{ address: 127.0.0.1:%d }" % bs[1].port,
                        "{ address: 127.0.0.1:%d, weight: 2 }" % bs[1].port)
    write(j, text)
    reload(admin)
    s = servers(admin)
    assert set(s) == {a0, a1, a2}
    assert (s[a0]["weight"], s[a0]["drain"]) == (7, False)
    assert s[a1]["weight"] == 2
    assert s[a2]["weight"] == 1, "the file's entry for a2, not the runtime's"
    assert changes(admin) == set()
    assert "the file's entry wins" in j.stderr()


def test_a_change_back_to_the_files_values_leaves_no_change(junction, backends, tmp_path):
    j, admin, bs, token = start(junction, backends, tmp_path)
    a0 = "127.0.0.1:%d" % bs[0].port
    admin.call("PATCH", server_path(a0), {"weight": 5})
    assert changes(admin) == {(a0, "changed")}
    admin.call("PATCH", server_path(a0), {"weight": 1})
    assert changes(admin) == set()
    added = "127.0.0.1:%d" % bs[2].port
    admin.call("POST", "/upstreams/app/servers", {"address": added})
    admin.call("DELETE", server_path(added))
    assert changes(admin) == set()
    assert set(servers(admin)) == {a0, "127.0.0.1:%d" % bs[1].port}


def test_the_last_server_cannot_be_removed(junction, backends, tmp_path):
    j, admin, bs, token = start(junction, backends, tmp_path, n=1)
    status, out, _ = admin.call("DELETE", server_path("127.0.0.1:%d" % bs[0].port))
    assert status == 400 and "last" in out["error"], out
    assert len(servers(admin)) == 1


LIMITED = """
  - name: limited
    match: { path: /limited }
    upstream: app
    policies:
      - rate_limit: { limit: 3, window: 1h }
"""


def test_rate_limit_counters_live_on_through_runtime_changes(junction, backends, tmp_path):
    bs = backends(2)
    token = write_token(tmp_path)
    text = config(bs[:1], token).replace("routes:\n", "routes:\n" + LIMITED)
    j = junction(text, nports=2)
    admin = Admin(j.ports[1])

    def hit():
        c = http.client.HTTPConnection("127.0.0.1", j.ports[0], timeout=10)
        c.request("GET", "/limited")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    assert [hit() for _ in range(3)] == [200, 200, 200]
    status, _, _ = admin.call("POST", "/upstreams/app/servers",
                              {"address": "127.0.0.1:%d" % bs[1].port})
    assert status == 201
    assert hit() == 429, "a runtime change reset the rate limit"
