#!/usr/bin/env bash
# make image: build the repository's Dockerfile with no Docker engine and no container registry.
#
#   1. a Debian root filesystem (debootstrap --variant=minbase plus the tools weftd execs), cached as a tarball under
#      $WEFT_IMAGES_CACHE keyed by release, architecture and package list;
#   2. localhost/weft-base:<release>, that rootfs as an image (stands in for debian:<release>-slim);
#   3. localhost/weft-builder:<go version>-<release>, the base plus this machine's Go toolchain and CA bundle (stands
#      in for golang:<go>-<release>);
#   4. buildah bud of ../Dockerfile with those two as BUILDER_IMAGE/BASE_IMAGE -> localhost/weft:<version>.
#
# Steps 1-3 are skipped when their result is already there. Only step 4's `go mod download` needs the network (the Go
# module proxy), and only step 1 (and the apt step with WEFT_IMAGE_BASE=bare) needs a Debian mirror. Environment: VERSION (default git describe),
# WEFT_IMAGE_RELEASE (default: this host's Debian codename), WEFT_DEBIAN_MIRROR, WEFT_IMAGE_BASE=bare (see below),
# WEFT_IMAGES_CACHE, WEFT_IMAGES_STORE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/lib.sh"
need buildah debootstrap go tar sha256sum dpkg

release=${WEFT_IMAGE_RELEASE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
release=${release:-bookworm}
mirror=${WEFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
arch=$(dpkg --print-architecture)
pkgs="iptables nftables iproute2 ca-certificates"
version=$(weft_version)
tag=$(weft_tag "$version")
image=localhost/weft:$tag
mkdir -p "$WEFT_IMAGES_CACHE" "$WEFT_IMAGES_STORE"

work=""
ctr=""
cleanup() {
	[ -z "$ctr" ] || bah rm "$ctr" >/dev/null 2>&1 || true
	if [ -n "$work" ] && [ -d "$work" ]; then
		# debootstrap mounts proc/sys inside the target; never delete through a mount.
		awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT

# 1. The root filesystem.
rootfs=$WEFT_IMAGES_CACHE/rootfs-$release-$arch-minbase-$(echo "$pkgs" | sha256sum | cut -c1-8).tar.gz
if [ -s "$rootfs" ]; then
	log "rootfs: cached $rootfs"
else
	log "rootfs: debootstrap $release ($arch, minbase + $pkgs) from $mirror"
	work=$(mktemp -d "$WEFT_IMAGES_CACHE/debootstrap.XXXXXX")
	debootstrap --variant=minbase --arch="$arch" --include="${pkgs// /,}" "$release" "$work/root" "$mirror" \
		>"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
	r=$work/root
	# Slim it as debian's -slim images are: no package lists, caches, logs or docs; the host's identity files out.
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old "$r"/var/log/* \
		"$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
		"$r"/etc/resolv.conf "$r"/etc/hostname "$r"/tmp/* "$r"/root/.bash_history
	: >"$r/etc/machine-id"
	tar --numeric-owner --xattrs --xattrs-include='*' --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		--exclude='./run/*' -C "$r" -czf "$rootfs.tmp" .
	mv "$rootfs.tmp" "$rootfs"
	cleanup
	work=""
	log "rootfs: $(du -h "$rootfs" | cut -f1) $rootfs"
fi
rootfs_sum=$(sha256sum "$rootfs" | cut -d' ' -f1)

# 2. The run-time base image.
base=localhost/weft-base:$release
if [ "$(image_label "$base" org.weftnet.images.rootfs-sha256)" = "$rootfs_sum" ]; then
	log "base: cached $base"
else
	log "base: importing the rootfs as $base"
	ctr=$(bah from scratch)
	mnt=$(bah mount "$ctr")
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$mnt" -xzf "$rootfs"
	bah umount "$ctr" >/dev/null
	bah config --os linux --arch "$arch" --cmd bash \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--label org.weftnet.images.rootfs-sha256="$rootfs_sum" \
		--label org.weftnet.images.rootfs="debootstrap --variant=minbase $release +${pkgs// /,}" "$ctr"
	bah commit --quiet --rm "$ctr" "$base" >/dev/null
	ctr=""
fi
base_id=$(bah inspect --type image --format '{{.FromImageID}}' "$base")

# 3. The builder image: the base plus this machine's Go toolchain, configured as the golang images are, and trusting
# the CAs this machine trusts (its CA bundle replaces the base's), so that `go mod download` works behind a
# TLS-intercepting proxy as it does here. The builder stays local: the weft image is built on the base, not on it.
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
cabundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$cabundle" ] || die "no CA bundle at $cabundle (set SSL_CERT_FILE)"
builder=localhost/weft-builder:$gover-$release
builder_key=$base_id/$gover/$(sha256sum <"$cabundle" | cut -c1-16)
if [ "$(image_label "$builder" org.weftnet.images.builder-key)" = "$builder_key" ]; then
	log "builder: cached $builder"
else
	log "builder: $base + $goroot ($gover) as $builder"
	ctr=$(bah from --pull=never "$base")
	mnt=$(bah mount "$ctr")
	mkdir -p "$mnt/usr/local/go"
	tar -C "$goroot" --exclude=./test --exclude=./.git --exclude=./pkg/obj --exclude=./pkg/bootstrap -cf - . |
		tar -C "$mnt/usr/local/go" --no-same-owner -xf -
	cp "$cabundle" "$mnt/etc/ssl/certs/ca-certificates.crt"
	bah umount "$ctr" >/dev/null
	bah config --env GOLANG_VERSION="${gover#go}" --env GOTOOLCHAIN=local --env GOPATH=/go \
		--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--workingdir /go --label org.weftnet.images.builder-key="$builder_key" "$ctr"
	bah run "$ctr" -- sh -c 'mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version' >&2
	bah commit --quiet --rm "$ctr" "$builder" >/dev/null
	ctr=""
fi

# Optionally (WEFT_IMAGE_BASE=bare) a base without the run-time tools, like debian:<release>-slim, so that the
# Dockerfile's apt-get branch runs too (that needs a reachable Debian mirror at build time).
if [ "${WEFT_IMAGE_BASE:-}" = bare ]; then
	bare=localhost/weft-base-bare:$release
	if [ "$(image_label "$bare" org.weftnet.images.bare-from)" = "$base_id" ]; then
		log "bare base: cached $bare"
	else
		log "bare base: $base without $pkgs as $bare"
		ctr=$(bah from --pull=never "$base")
		bah run "$ctr" -- sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove $pkgs >/dev/null &&
			! dpkg -s $pkgs >/dev/null 2>&1 && ! command -v iptables && ! command -v nft" >&2
		bah config --label org.weftnet.images.bare-from="$base_id" "$ctr"
		bah commit --quiet --rm "$ctr" "$bare" >/dev/null
		ctr=""
	fi
	base=$bare
fi

# 4. The Dockerfile itself, unchanged but for the base images. Module proxy settings follow this machine's go env.
goargs=()
for v in GOPROXY GOSUMDB GOFLAGS; do
	val=$(go env "$v")
	[ -z "$val" ] || goargs+=(--build-arg "$v=$val")
done
# RUN --mount=type=cache directories live under buildah's TMPDIR: keep them in the cache too, so rebuilds are warm.
mkdir -p "$WEFT_IMAGES_CACHE/tmp"
log "build: $image from $repo/Dockerfile (BUILDER_IMAGE=$builder BASE_IMAGE=$base VERSION=$version)"
TMPDIR=$WEFT_IMAGES_CACHE/tmp bah bud --isolation chroot --pull=never --layers=false \
	--build-arg BUILDER_IMAGE="$builder" --build-arg BASE_IMAGE="$base" --build-arg VERSION="$version" \
	"${goargs[@]}" -f "$repo/Dockerfile" -t "$image" "$repo"
# Keep the newest WEFT_IMAGES_KEEP (default 3) weft images; a rebuild of the same version leaves the previous one
# untagged, drop those too. (vfs stores every image's layers in full, so the store grows fast otherwise.)
bah images --format '{{.CreatedAtRaw}}|{{.Name}}:{{.Tag}}' --filter reference=localhost/weft | sort -r |
	tail -n +"$((${WEFT_IMAGES_KEEP:-3} + 1))" | cut -d'|' -f2 | { grep -vxF "$image" || true; } |
	while read -r old; do log "removing old image $old"; bah rmi "$old" >/dev/null || true; done
bah rmi --prune >/dev/null 2>&1 || true
echo "$image" >"$WEFT_IMAGES_CACHE/last-image"
bah images "$image"
log "built $image (store: $WEFT_IMAGES_STORE; verify with make image-verify)"
