#!/usr/bin/env bash
# Build the project's image from its Dockerfile and run the workspace inside it, for real.
#
#   sudo bash scripts/container_check.sh        # root, on a Debian/Ubuntu host (CI runs it)
#
# 1. installs podman, buildah, runc and debootstrap if missing (apt-get);
# 2. makes (once, then cached) a local Ubuntu 22.04 base image with debootstrap: no container
#    registry is needed (the Ubuntu keyring .deb is downloaded and checked against its SHA-256);
# 3. builds the light image localhost/stucrs:test from the Dockerfile (BASE = that image,
#    PYTHON_SOURCE=system, FRAMEWORKS=stucrs, ENV_MODE=cpu; the host's CA bundle as a build secret);
# 4. lays out the dev container's way: a copy of this checkout bind-mounted at /workspaces/stucrs,
#    .venvs in a volume filled from the image, MNIST mounted read-only; then, as the image's
#    non-root user (with the host user's ids): `snakemake --version`, `python -c "import stucrs"`,
#    the lifecycle commands of .devcontainer/devcontainer.json, and the quick preset limited to the
#    StuCrs and NumPy variants;
# 5. checks that the results and the MLflow runs are in the mounted workspace, owned by the host user.
#
# Settings (environment): STUCRS_MNIST_DIR (default ../shared/mnist or ~/.stucrs/mnist),
# STUCRS_CONTAINER_CACHE (default /var/cache/stucrs-container: base image tarball, containers.conf),
# UBUNTU_MIRROR (default http://archive.ubuntu.com/ubuntu), STUCRS_CHECK_UID/GID (the host user;
# default $SUDO_UID/$SUDO_GID, else 1000), KEEP=1 keeps the work folder for a look afterwards.
# The full image (all frameworks, CUDA wheels) is `podman build -t stucrs .`: docs/en/pipeline.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${STUCRS_CONTAINER_CACHE:-/var/cache/stucrs-container}
MIRROR=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
BASE_IMAGE=localhost/stucrs-base:jammy-minbase
IMAGE=localhost/stucrs:test
KEYRING_DEB=ubuntu-keyring_2021.03.26_all.deb
KEYRING_SHA256=0d0e7ed6b112f5d03eabf3c7eb01ebdacf9c57714b279e90495cfc58c8c4520f
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

say() { printf '[container-check] %s\n' "$*"; }
die() { printf '[container-check] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (podman builds and runs rootful here): sudo bash $0"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu host with apt-get (to install podman)"

HOST_UID=${STUCRS_CHECK_UID:-${SUDO_UID:-1000}}
HOST_GID=${STUCRS_CHECK_GID:-${SUDO_GID:-1000}}
[ "$HOST_UID" != 0 ] || HOST_UID=1000
[ "$HOST_GID" != 0 ] || HOST_GID=1000

mnist=${STUCRS_MNIST_DIR:-}
if [ -z "$mnist" ]; then
  for cand in "$ROOT/../shared/mnist" "$HOME/.stucrs/mnist"; do
    [ -f "$cand/train-images-idx3-ubyte.gz" ] && mnist=$cand && break
  done
fi
[ -n "$mnist" ] && [ -f "$mnist/train-images-idx3-ubyte.gz" ] \
  || die "no MNIST copy: set STUCRS_MNIST_DIR to the folder with the four .gz files"
mnist=$(cd "$mnist" && pwd)

# --- 1. tools ----------------------------------------------------------------------------------
missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if (( ${#missing[@]} )); then
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah runc debootstrap fuse-overlayfs >/dev/null
fi
mkdir -p "$CACHE"
# runc: crun refuses hybrid cgroups on these hosts; explicit ulimits: the defaults cannot be set here
cat > "$CACHE/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$CACHE/containers.conf
say "podman $(podman version --format '{{.Client.Version}}'), runtime runc, CONTAINERS_CONF=$CONTAINERS_CONF"

# --- 2. the local Ubuntu 22.04 base image (cached) ------------------------------------------------
if ! podman image exists "$BASE_IMAGE"; then
  tarball=$CACHE/jammy-minbase.tar
  if [ ! -s "$tarball" ]; then
    tmp=$(mktemp -d)
    say "downloading $KEYRING_DEB and checking its SHA-256"
    curl -fsSL --retry 3 -o "$tmp/$KEYRING_DEB" "$MIRROR/pool/main/u/ubuntu-keyring/$KEYRING_DEB"
    echo "$KEYRING_SHA256  $tmp/$KEYRING_DEB" | sha256sum -c --quiet - \
      || die "$KEYRING_DEB does not match its pinned SHA-256 (a changed or broken download)"
    dpkg-deb -x "$tmp/$KEYRING_DEB" "$tmp/keyring"
    say "debootstrap --variant=minbase jammy from $MIRROR"
    debootstrap --variant=minbase --keyring="$tmp/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg" \
      jammy "$tmp/rootfs" "$MIRROR" > "$tmp/debootstrap.log" 2>&1 \
      || { tail -20 "$tmp/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    # the archive the image's apt uses: jammy-updates (python3.11) and universe, like the CUDA base
    printf 'deb %s jammy main universe\ndeb %s jammy-updates main universe\ndeb %s jammy-security main universe\n' \
      "$MIRROR" "$MIRROR" "$MIRROR" > "$tmp/rootfs/etc/apt/sources.list"
    rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"*
    tar -C "$tmp/rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$tmp"
  fi
  podman import --quiet "$tarball" "$BASE_IMAGE" >/dev/null
fi
say "base image $BASE_IMAGE"

# --- 3. the light image ------------------------------------------------------------------------
say "building $IMAGE from $ROOT/Dockerfile (FRAMEWORKS=stucrs, ENV_MODE=cpu, PYTHON_SOURCE=system)"
t0=$(date +%s)
# --format docker: the OCI format would drop the Dockerfile's SHELL (bash -o pipefail)
podman build --format docker --network host --quiet -f "$ROOT/Dockerfile" -t "$IMAGE" \
  --build-arg BASE="$BASE_IMAGE" --build-arg PYTHON_SOURCE=system \
  --build-arg FRAMEWORKS=stucrs --build-arg ENV_MODE=cpu \
  --build-arg APP_UID="$HOST_UID" --build-arg APP_GID="$HOST_GID" \
  --secret id=host_ca,src="$CA_BUNDLE" "$ROOT" >/dev/null
say "built in $(( $(date +%s) - t0 )) s, $(podman image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
if podman run --rm --network host "$IMAGE" sh -c 'grep -rl "BEGIN CERTIFICATE" /run/secrets 2>/dev/null; true' | grep -q .; then
  die "the build secret (the host's CA bundle) is in the image"
fi

# --- 4. the dev container's layout, and the commands inside it ----------------------------------
work=$(mktemp -d /tmp/stucrs-container-check.XXXXXX)
volume=stucrs-check-venvs-$$
cleanup() {
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
git -C "$ROOT" ls-files -co --exclude-standard -z | (cd "$ROOT" && xargs -0 cp --parents -t "$work" 2>/dev/null) || true
[ -f "$work/Snakefile" ] || die "could not copy the checkout into $work"
chown -R "$HOST_UID:$HOST_GID" "$work"
podman volume create "$volume" >/dev/null

in_container() {  # as the image's user; the checkout over /workspaces/stucrs, .venvs from the volume
  podman run --rm --network host --userns=host \
    -v "$work:/workspaces/stucrs" -v "$volume:/workspaces/stucrs/.venvs" -v "$mnist:/mnist:ro" \
    -e STUCRS_MNIST_DIR=/mnist "$IMAGE" bash -c "$1"
}

say "inside: whoami, snakemake --version, import stucrs"
in_container 'set -e; echo "user $(id -un) ($(id -u):$(id -g))"; test "$(id -u)" != 0
              echo "snakemake $(snakemake --version)"; python -c "import stucrs, sys; print(\"stucrs\", stucrs.__version__, \"from\", stucrs.__file__)"'

# the lifecycle commands devcontainer.json declares, in the order VS Code runs them
lifecycle=$(python3 - "$ROOT/.devcontainer/devcontainer.json" <<'EOF'
import json, re, sys
text = re.sub(r'^\s*//.*$', '', open(sys.argv[1], encoding="utf-8").read(), flags=re.M)
doc = json.loads(text)
for key in ("onCreateCommand", "updateContentCommand", "postCreateCommand", "postStartCommand", "postAttachCommand"):
    cmd = doc.get(key)
    if isinstance(cmd, list):
        import shlex
        cmd = " ".join(shlex.quote(c) for c in cmd)
    elif isinstance(cmd, dict):
        cmd = " && ".join(cmd.values())
    if cmd:
        print(key + "\t" + cmd)
EOF
)
while IFS=$'\t' read -r key cmd; do
  [ -n "$key" ] || continue
  say "inside: $key: $cmd"
  in_container "$cmd"
done <<< "$lifecycle"

say "inside: the quick preset, StuCrs and NumPy variants"
in_container 'bash scripts/run.sh --cores 2 --configfile config/quick.yaml --config mnist_dir=/mnist \
  "variants=[{framework: stucrs, device: cpu}, {framework: numpy, device: cpu}]" "profile={frameworks: [stucrs]}" \
  > results-quick.log 2>&1 || { tail -40 results-quick.log; exit 1; }; tail -3 results-quick.log'

# --- 5. what the run left in the mounted workspace -----------------------------------------------
python3 - "$work" "$HOST_UID" "$HOST_GID" <<'EOF'
import csv, os, sqlite3, sys
work, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
summary = os.path.join(work, "results", "quick", "summary.csv")
rows = list(csv.DictReader(open(summary)))
got = {(r["network"], r["framework"]) for r in rows}
want = {("mlp1", "stucrs"), ("cnn", "stucrs"), ("mlp1", "numpy"), ("mlp1", "floor"), ("cnn", "floor")}
assert want <= got, ("summary rows", sorted(got))
con = sqlite3.connect(os.path.join(work, "results", "mlflow.db"))
runs = con.execute("select count(*) from runs r join experiments e on r.experiment_id = e.experiment_id "
                   "where e.name = 'stucrs-quick' and r.status = 'FINISHED'").fetchone()[0]
assert runs >= 3, "MLflow runs of stucrs-quick: %d" % runs
wrong = []
for base in ("results", "resources"):
    for d, dirs, files in os.walk(os.path.join(work, base)):
        for n in [d] + [os.path.join(d, f) for f in files]:
            st = os.lstat(n)
            if (st.st_uid, st.st_gid) != (uid, gid):
                wrong.append(n)
assert not wrong, ("not owned by the host user %d:%d" % (uid, gid), wrong[:5])
print("[container-check] results: %d summary rows, %d MLflow runs, all owned by %d:%d"
      % (len(rows), runs, uid, gid))
EOF
say "ok: $IMAGE builds and runs the quick preset as the non-root user"
