#!/usr/bin/env bash
# make image-verify: check the image `make image` built, without a daemon: run its binaries in a buildah working
# container (chroot isolation, host network), inspect its config, export it as a docker-archive and load that archive
# back into an empty store to run from the loaded copy. Environment: VERSION (default git describe), WEFT_IMAGE
# (default localhost/weft:<VERSION>), WEFT_IMAGE_ARCHIVE (default /tmp/weft-image.tar).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need buildah file

archive=${WEFT_IMAGE_ARCHIVE:-/tmp/weft-image.tar}
image=${WEFT_IMAGE:-localhost/weft:$(weft_tag "$(weft_version)")}
if ! image_exists "$image" && [ -z "${WEFT_IMAGE:-}" ] && [ -s "$WEFT_IMAGES_CACHE/last-image" ]; then
	# The tree moved on (a commit, an edit) since make image: check the image it built last.
	log "no $image (the tree changed since make image); checking the last one built"
	image=$(cat "$WEFT_IMAGES_CACHE/last-image")
fi
image_exists "$image" || die "no image $image in $WEFT_IMAGES_STORE: run make image first"
# What the binaries must print: the version the image was built with (its tag and its OCI version label).
version=$(image_label "$image" org.opencontainers.image.version)
[ -n "$version" ] || die "$image has no org.opencontainers.image.version label"

ctr=""
mnt=""
loaded=""
cleanup() {
	[ -z "$mnt" ] || bah umount "$ctr" >/dev/null 2>&1 || true
	[ -z "$ctr" ] || bah rm "$ctr" >/dev/null 2>&1 || true
	[ -z "$loaded" ] || rm -rf --one-file-system "$loaded"
}
trap cleanup EXIT
fails=0
check() { # check <what> <command...>: run, show output, count failures
	local what=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" = 0 ]; then printf 'ok    %s\n' "$what"; else printf 'FAIL  %s (exit %s)\n' "$what" "$rc"; fails=$((fails + 1)); fi
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/      /'
}
in_image() { bah run "$ctr" -- "$@"; }
expect() { # expect <want> <command...>: output must be exactly want
	local want=$1 got
	shift
	got=$("$@") || return
	printf '%s\n' "$got"
	[ "$got" = "$want" ] || { echo "want \"$want\""; return 1; }
}
expect_has() { # expect_has <substring> <command...>
	local want=$1 got
	shift
	got=$("$@") || return
	printf '%s\n' "$got"
	case $got in *"$want"*) ;; *) echo "want it to contain \"$want\""; return 1 ;; esac
}

log "image $image"
ctr=$(bah from --pull=never --quiet "$image")
mnt=$(bah mount "$ctr")
check "config: entrypoint, user (empty = root), labels" bah inspect --type image --format \
	'entrypoint={{.OCIv1.Config.Entrypoint}} user="{{.OCIv1.Config.User}}" os/arch={{.OCIv1.OS}}/{{.OCIv1.Architecture}}
{{range $k, $v := .OCIv1.Config.Labels}}{{$k}}={{$v}}
{{end}}' "$image"
check "tag matches label org.opencontainers.image.version=$version" test "${image##*:}" = "$(weft_tag "$version")"
check "/opt/bin/flanneld --version prints $version" expect "$version" in_image /opt/bin/flanneld --version
check "/opt/bin/weftd --version prints $version" expect "$version" in_image /opt/bin/weftd --version
check "/opt/bin/weft version names $version" expect_has "$version" in_image /opt/bin/weft version
check "CNI_COMMAND=VERSION /flannel (the path kube-flannel.yml's init container copies)" \
	bah run -e CNI_COMMAND=VERSION "$ctr" -- /flannel
check "/opt/bin/install-conf <src> <dest> (kube-flannel.yml v0.28.6+'s install-cni step) installs the conflist" \
	bah run "$ctr" -- sh -c 'echo "{\"name\":\"cbr0\"}" >/tmp/c.json && /opt/bin/install-conf /tmp/c.json /tmp/net.d/10-flannel.conflist && cat /tmp/net.d/10-flannel.conflist'
check "upstream paths are symlinks to weft's binaries" in_image ls -l /opt/bin/ /flannel
check "binaries are static (no ELF interpreter)" sh -c '
	rc=0; for b in "$1"/opt/bin/weftd "$1"/opt/bin/weft "$1"/opt/bin/flannel; do
		f=$(file -b "$b"); echo "${b#"$1"}: $f"
		case $f in *"statically linked"*) ;; *) rc=1 ;; esac
		case $f in *interpreter*) rc=1 ;; esac
	done; exit $rc' sh "$mnt"
check "iptables --version" in_image iptables --version
check "ip6tables --version" in_image ip6tables --version
check "nft --version" in_image nft --version
check "ip -V" in_image ip -V
check "CA bundle present" in_image sh -c 'ls -l /etc/ssl/certs/ca-certificates.crt'
# Kernel round trips from the image's userspace, read-only (chroot isolation shares this host's network namespace).
# buildah's default capability set has no NET_ADMIN, like a pod without the DaemonSet's securityContext: there they
# must fail; with NET_ADMIN/NET_RAW added, as kube-flannel.yml grants, they must work.
net_admin=(--cap-add CAP_NET_ADMIN --cap-add CAP_NET_RAW)
fails_without_net_admin() { ! bah run "$ctr" -- "$@" >/dev/null 2>&1 && echo "refused, as expected"; }
check "nft list tables is refused without NET_ADMIN" fails_without_net_admin nft list tables
check "nft list tables works with NET_ADMIN (read-only)" bah run "${net_admin[@]}" "$ctr" -- sh -c \
	'nft list tables | head -5'
check "iptables -t nat -S works with NET_ADMIN (read-only)" bah run "${net_admin[@]}" "$ctr" -- sh -c \
	'iptables -w 5 -t nat -S | head -5'
bad_flag() { # weftd must start, parse flags and refuse an unknown one with a non-zero exit
	local out rc=0
	out=$(bah run "$ctr" -- /opt/bin/flanneld --no-such-flag 2>&1) || rc=$?
	printf '%s\n' "$out" | grep -v 'subprocess exited\|^Error: exit status' | head -3
	[ "$rc" -ne 0 ]
}
check "weftd starts and refuses an unknown flag" bad_flag
bah umount "$ctr" >/dev/null
mnt=""
bah rm "$ctr" >/dev/null
ctr=""

check "image size" bah images "$image"
rm -f "$archive"
export_archive() {
	bah push --quiet "$image" "docker-archive:$archive:$image" >/dev/null && ls -l "$archive" && du -h "$archive"
}
check "export as docker-archive $archive (the docker load / podman load format)" export_archive
# Load the archive into a fresh, empty store and run from there: proves the archive is a complete image.
loaded=$(mktemp -d "${TMPDIR:-/tmp}/weft-load.XXXXXX")
load_and_run() {
	local l=(buildah --storage-driver vfs --root "$loaded/storage" --runroot "$loaded/run") c rc=0
	"${l[@]}" pull --quiet "docker-archive:$archive" >/dev/null || return
	c=$("${l[@]}" from --pull=never --quiet "$image") || return
	"${l[@]}" run "$c" -- /opt/bin/flanneld --version || rc=$?
	"${l[@]}" rm "$c" >/dev/null
	return $rc
}
check "the archive loads into an empty store and runs flanneld --version" expect "$version" load_and_run
left=$(bah containers --quiet --filter ancestor="$image" | wc -l)
check "no working containers left on $image" test "$left" = 0

if [ "$fails" -ne 0 ]; then die "$fails check(s) failed"; fi
log "all checks passed for $image"
