"""Starting `quantserve serve` from the Python test drivers: on a free loopback port, returning once every engine is
ready (its stderr says `listening on http://127.0.0.1:PORT`, then one `ready:` line per engine)."""
import re
import subprocess
import sys
import time


def start_serve(arguments, engines=1, timeout=180):
    """`arguments`: the whole command line (binary, `serve`, flags with `--port 0`). Returns (process, port); exits
    the test with a message when the server does not become ready in `timeout` seconds."""
    proc = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port, ready, deadline = None, 0, time.time() + timeout
    while time.time() < deadline and ready < engines:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        port = int(m.group(1)) if m else port
        ready += line.startswith("quantserve: ready:")
    if ready < engines:
        proc.kill()
        sys.exit("the server did not become ready")
    return proc, port
