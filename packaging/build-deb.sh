#!/bin/sh
# Builds the Debian binary package from the `make release` binaries with dpkg-deb (`make deb`).
#
# The file layout is not decided here: the package is whatever `make install` stages into DESTDIR
# with the DEB_* paths the Makefile's deb section passes (PREFIX, UNITDIR, DOCDIR). Program names,
# unit names and the configuration directory are read back from that staged tree, so a change to
# the install section's names or paths reaches the package, its conffiles and its maintainer scripts
# without an edit here.
#
# Environment (set by the Makefile): DEB_PACKAGE DEB_VERSION DEB_PREFIX DEB_UNITDIR DEB_DOCDIR
# DEB_MAINTAINER DEB_OUT SCRATCH, and DEB_OLDCONFDIR DEB_MOVED_BEFORE (the configuration's old home). Prints the path of the .deb on its last line.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
: "${DEB_PACKAGE:?}" "${DEB_PREFIX:?}" "${DEB_UNITDIR:?}" "${DEB_DOCDIR:?}" "${DEB_OUT:?}" "${SCRATCH:?}"
: "${DEB_OLDCONFDIR:?}" "${DEB_MOVED_BEFORE:?}"
arch=$(dpkg --print-architecture)

stage=$(mktemp -d "${TMPDIR:-/tmp}/hyperglass-deb.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/hyperglass-deb-work.XXXXXX")
trap 'rm -rf "$stage" "$work"' EXIT
chmod 0755 "$stage"

# 1. The files, exactly as `make install` lays them out.
make -s --no-print-directory -C "$root" install DESTDIR="$stage" PREFIX="$DEB_PREFIX" \
    UNITDIR="$DEB_UNITDIR" DOCDIR="$DEB_DOCDIR" SCRATCH="$SCRATCH" >/dev/null
bindir="$stage$DEB_PREFIX/bin"
programs=$(cd "$bindir" && ls)
units=$(cd "$stage$DEB_UNITDIR" && ls)
service=$(echo "$units" | grep '\.service$' | head -n 1)
socket=$(echo "$units" | grep '\.socket$' | head -n 1)
[ -n "$service" ] && [ -n "$socket" ] || { echo "build-deb: no .service and .socket in $DEB_UNITDIR" >&2; exit 1; }

version=${DEB_VERSION:-}
if [ -z "$version" ]; then
    upstream=$("$bindir/$(echo "$programs" | grep -x hyperglass || echo "$programs" | head -n 1)" version | awk '{print $2}')
    stamp=$(git -C "$root" log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || date -u +%Y%m%d%H%M%S)
    sha=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    version="$upstream+git$stamp.$sha-1"
fi

# 2. What dh_strip would do: no symbols or notes in the shipped binaries (a crash still names the
#    Swift function through the runtime's own metadata; full symbols stay in the build directory).
for p in $programs; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$bindir/$p"
    "$bindir/$p" --help >/dev/null 2>&1 || { echo "build-deb: $p does not run after strip" >&2; exit 1; }
done

# 3. Manual pages from each program's --help (the programs' own text, so they cannot drift).
mandir="$stage/usr/share/man/man1"
mkdir -p "$mandir"
for p in $programs; do
    case "$p" in
    *ctl) summary="show and change a running hyperglass supervisor, and check its health" ;;
    *worker) summary="the reference HTTP/1.1 and WebSocket worker for the hyperglass supervisor" ;;
    *) summary="systemd-first supervisor for a pool of web application workers" ;;
    esac
    {
        printf '.TH %s 1 "%s" "%s %s" "User Commands"\n' "$(echo "$p" | tr a-z A-Z)" "$(date -u +%Y-%m-%d)" "$DEB_PACKAGE" "$version"
        printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$p" "$summary"
        "$bindir/$p" --help 2>&1 | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
        printf '.fi\n.SH SEE ALSO\n'
        for q in $programs; do [ "$q" = "$p" ] || printf '.BR %s (1),\n' "$q"; done
        printf '.BR systemctl (1)\nand %s/\n' "$DEB_DOCDIR"
    } | gzip -9n > "$mandir/$p.1.gz"
done

# 4. Documentation Debian requires, and the deployment guide.
docdir="$stage$DEB_DOCDIR"
mkdir -p "$docdir"
install -m 0644 "$here/debian/copyright" "$docdir/copyright"
[ -f "$root/docs/deployment.md" ] && install -m 0644 "$root/docs/deployment.md" "$docdir/deployment.md"
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$DEB_PACKAGE" "$version"
    printf '  * Built by make deb from %s.\n\n' "$(git -C "$root" describe --always --dirty 2>/dev/null || echo 'a source tree')"
    printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(date -R -u -d "@$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n > "$docdir/changelog.Debian.gz"
mkdir -p "$stage/usr/share/lintian/overrides"
sed "s/@PACKAGE@/$DEB_PACKAGE/g" "$here/debian/lintian-overrides" > "$stage/usr/share/lintian/overrides/$DEB_PACKAGE"

# 5. Every file under /etc is the administrator's once installed: a conffile. The directories are
#    what purge may remove once dpkg has taken the conffiles (deepest first).
confdirs=$(cd "$stage" && find etc -mindepth 1 -type d | sort -r | sed 's|^|/|' | tr '\n' ' ')
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f ! -perm -0100 -exec chmod 0644 {} +

# The configuration directory (the one holding supervisor.conf) and the conffiles in it, relative:
# each moves there from DEB_OLDCONFDIR on upgrades from DEB_MOVED_BEFORE or older (preinst).
confdir=$(cd "$stage" && find etc -name supervisor.conf -type f | head -n 1 | xargs dirname | sed 's|^|/|')
[ -n "$confdir" ] || { echo "build-deb: no supervisor.conf under /etc in the staged tree" >&2; exit 1; }
moved=$(cd "$stage$confdir" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')

# 6. Control files.
mkdir -p "$stage/DEBIAN"
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
mkdir -p "$work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$DEB_PACKAGE" "$DEB_PACKAGE" > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O $(for p in $programs; do echo "$bindir/$p"; done) 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
# deb-systemd-helper and deb-systemd-invoke in the maintainer scripts.
depends="$shlibs, init-system-helpers (>= 1.54~)"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
maintainer_scripts() {
    sed -e "s|@PACKAGE@|$DEB_PACKAGE|g" -e "s|@SERVICE@|$service|g" -e "s|@SOCKET@|$socket|g" -e "s|@BINDIR@|$DEB_PREFIX/bin|g" \
        -e "s|@DOCDIR@|$DEB_DOCDIR|g" -e "s|@CONFDIRS@|$confdirs|g" -e "s|@CONFDIR@|$confdir|g" \
        -e "s|@OLDCONFDIR@|$DEB_OLDCONFDIR|g" -e "s|@MOVED_BEFORE@|$DEB_MOVED_BEFORE|g" -e "s|@MOVED_CONFFILES@|$moved|g" "$1"
}
for script in preinst postinst prerm postrm; do
    maintainer_scripts "$here/debian/$script.in" > "$stage/DEBIAN/$script"
    chmod 0755 "$stage/DEBIAN/$script"
done
sed -e "s|@PACKAGE@|$DEB_PACKAGE|g" -e "s|@VERSION@|$version|g" -e "s|@ARCH@|$arch|g" \
    -e "s|@MAINTAINER@|$DEB_MAINTAINER|g" -e "s|@SIZE@|$size|g" -e "s|@DEPENDS@|$depends|g" \
    "$here/debian/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' | sed 's|^\./||' | sort | xargs md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

mkdir -p "$DEB_OUT"
deb="$DEB_OUT/${DEB_PACKAGE}_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
