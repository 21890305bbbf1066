# Shared by images/build.sh and images/verify.sh (sourced, not run).
#
# buildah runs daemonless here: the vfs storage driver (no overlay mounts or fuse needed) and chroot isolation (no
# OCI runtime, no namespaces set up beyond the chroot, host network). Its store is private to weft, under the cache
# directory, so it never clashes with a system podman/buildah store configured for another driver.

WEFT_IMAGES_CACHE=${WEFT_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/images}
WEFT_IMAGES_STORE=${WEFT_IMAGES_STORE:-$WEFT_IMAGES_CACHE/containers}
export BUILDAH_ISOLATION=chroot

bah() {
	buildah --storage-driver vfs --root "$WEFT_IMAGES_STORE/storage" --runroot "$WEFT_IMAGES_STORE/run" "$@"
}

log() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }

need() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null || die "$t is not installed (make image installs it with apt-get)"; done
}

# The image tag for a version string: tags allow [A-Za-z0-9_.-] only (a "+" from a semver build suffix becomes "_").
weft_version() {
	local v=${VERSION:-}
	[ -n "$v" ] || v=$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." describe --tags --always --dirty 2>/dev/null || echo dev)
	printf '%s\n' "$v"
}
weft_tag() { printf '%s\n' "$1" | tr -c 'A-Za-z0-9_.\n-' '_'; }

image_exists() { bah inspect --type image "$1" >/dev/null 2>&1; }
image_label() { bah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null; }
