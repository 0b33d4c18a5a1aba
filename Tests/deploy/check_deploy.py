#!/usr/bin/env python3
"""The deployment files, checked without a cluster or a container engine:

- every manifest in deploy/kubernetes validates against the Kubernetes schemas (kubernetes-validate, strict), and a
  manifest with a misspelt field does not (so the check can fail);
- the Dockerfile's runtime stage installs exactly the Debian packages the binary needs beyond the base image, as the
  Makefile derives them from the built binary (`make -s runtime-packages`: its shared libraries, each to the package
  that ships it), each a real package; the runtime is a slim Debian image and gets the binary's resource bundles;
- deploy/nginx's config passes `nginx -t` in both balancing modes.

usage: check_deploy.py --venv .venv
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=os.path.join(ROOT, ".venv"))
    args = ap.parse_args()
    failures = []

    def check(name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
        if not ok:
            failures.append(name)

    validate = os.path.join(args.venv, "bin", "kubernetes-validate")
    manifests = sorted(glob.glob(os.path.join(ROOT, "deploy/kubernetes/*.yaml")))
    out = subprocess.run([validate, "--strict", *manifests], capture_output=True, text=True)
    kinds = re.findall(r"passed for resource (\S+)", out.stdout + out.stderr)
    check(f"Kubernetes manifests validate ({', '.join(kinds)})", out.returncode == 0, out.stdout + out.stderr)
    for kind in ["deployment/quantserve", "service/quantserve", "horizontalpodautoscaler/quantserve",
                 "poddisruptionbudget/quantserve", "configmap/prometheus-adapter-quantserve"]:
        check(f"  {kind} is there", kind in kinds)
    with tempfile.TemporaryDirectory() as scratch:
        broken = os.path.join(scratch, "broken.yaml")
        text = open(os.path.join(ROOT, "deploy/kubernetes/deployment.yaml")).read()
        open(broken, "w").write(text.replace("  replicas: 2", "  replica: 2", 1))
        out = subprocess.run([validate, "--strict", broken], capture_output=True, text=True)
        check("a manifest with a misspelt field is refused", out.returncode != 0)

    dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", dockerfile, re.M)
    check("Dockerfile: a build stage, then a slim Debian runtime", [s[1] for s in stages] == ["build", "runtime"]
          and re.match(r"debian:[\w.-]+-slim$", stages[1][0]) is not None, str(stages))
    runtime = dockerfile[dockerfile.index("AS runtime"):]
    m = re.search(r'ARG RUNTIME_PACKAGES="([^"]*)"', runtime)
    declared = set(m.group(1).split()) if m else set()
    derived = set(subprocess.run(["make", "-s", "--no-print-directory", "runtime-packages"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split())
    check(f"Dockerfile's runtime packages are the binary's ({' '.join(sorted(derived))})", declared == derived and derived,
          f"Dockerfile {sorted(declared)}, binary {sorted(derived)}")
    for p in sorted(declared):
        known = subprocess.run(["apt-cache", "show", p], capture_output=True).returncode == 0
        check(f"  {p} is a Debian package", known)
    check("Dockerfile: the runtime gets the binary and its resource bundles",
          "COPY --from=build /out/ /opt/quantserve/" in runtime and "*.resources" in dockerfile)

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for mode in ["least-conn", "affinity"]:
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copy(os.path.join(ROOT, "deploy/nginx/nginx.conf"), scratch)
            shutil.copy(os.path.join(ROOT, f"deploy/nginx/upstream-{mode}.conf"), os.path.join(scratch, "quantserve-upstream.conf"))
            out = subprocess.run([nginx, "-t", "-p", scratch, "-c", "nginx.conf"], capture_output=True, text=True)
            check(f"nginx -t accepts the {mode} config", out.returncode == 0, out.stderr)
    if failures:
        sys.exit(f"{len(failures)} deployment checks failed: {', '.join(failures)}")
    print("deploy: all checks passed")


if __name__ == "__main__":
    main()
