# Runs Autobahn's `wstest -m fuzzingclient`, with one addition: a server entry of the spec may
# carry "headers" (e.g. a session Cookie), sent with every opening handshake. The fuzzing client
# passes only "origin" on to the WebSocket factory; Switchboard's WebSocket endpoints need a
# signed-in session as well. Python 2.7 (the test suite is Python 2 only).
import sys

from autobahntestsuite import fuzzing, wstest

_next_server = fuzzing.FuzzingClientFactory.nextServer


def _next_server_with_headers(self):
    more = _next_server(self)
    if more:
        server = self.spec["servers"][self.currServer]
        self.headers = dict(server.get("headers", {}))
    return more


fuzzing.FuzzingClientFactory.nextServer = _next_server_with_headers

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    wstest.run()
