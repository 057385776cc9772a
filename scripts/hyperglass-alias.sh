#!/bin/sh
# The `hyperglass` command beside `hyperglass-supervisor`, without ever taking it from the looking glass.
#   scripts/hyperglass-alias.sh install BINDIR     (make install)
#   scripts/hyperglass-alias.sh uninstall BINDIR   (make uninstall)
#
# The supervisor is always installed as BINDIR/hyperglass-supervisor, and the unit runs that name.
# BINDIR/hyperglass is also what `pip install hyperglass` (the looking glass, as root) writes, so the
# alias is a relative symlink hyperglass -> hyperglass-supervisor, made only where the name is free or
# already ours. What pip does with each, measured with pip 24.2:
#   - a symlink there: pip removes the link and writes its own script; hyperglass-supervisor is untouched.
#   - a dangling symlink there: pip writes THROUGH it, creating the file it points to. Hence uninstall
#     removes the alias together with hyperglass-supervisor, never leaving one that dangles.
#   - pip's script there: we leave it alone (`hyperglass` is then the looking glass's CLI).
# Ours is: a symlink to hyperglass-supervisor, or the supervisor binary itself (the layout before this
# one put the binary there: an ELF file naming hyperglassctl), which is replaced by the symlink.
set -eu
action=$1
bindir=$2
alias=$bindir/hyperglass

ours() {
    if [ -L "$alias" ]; then
        [ "$(readlink "$alias")" = hyperglass-supervisor ] || [ "$(readlink "$alias")" = "$bindir/hyperglass-supervisor" ]
    elif [ -f "$alias" ]; then
        [ "$(head -c 4 "$alias" | od -An -c | tr -d ' ')" = '177ELF' ] && grep -q -a 'hyperglassctl' "$alias"
    else
        return 1
    fi
}

describe() {
    if [ -L "$alias" ]; then echo "a symlink to $(readlink "$alias")"
    elif grep -q 'from hyperglass.console import' "$alias" 2>/dev/null; then echo "the hyperglass looking glass's command (pip)"
    else echo "not installed by this project"; fi
}

case $action in
install)
    if [ ! -e "$alias" ] && [ ! -L "$alias" ]; then
        ln -s hyperglass-supervisor "$alias"
        echo "installed $alias -> hyperglass-supervisor"
    elif ours; then
        if [ ! -L "$alias" ]; then
            # The previous layout's binary: replace the file by the link (rm first: never write through).
            rm -f "$alias" && ln -s hyperglass-supervisor "$alias"
            echo "replaced $alias (the supervisor binary of an earlier install) by a symlink to hyperglass-supervisor"
        fi
    else
        echo "kept $alias: it is $(describe)."
        echo "  The supervisor is $bindir/hyperglass-supervisor (the unit runs that); use that name, e.g."
        echo "  'hyperglass-supervisor check-config'. 'hyperglass' stays the looking glass's command."
    fi ;;
uninstall)
    if ours; then
        rm -f "$alias"
        echo "removed $alias"
    elif [ -e "$alias" ] || [ -L "$alias" ]; then
        echo "kept $alias: it is $(describe)"
    fi ;;
*)
    echo "usage: $0 install|uninstall BINDIR" >&2
    exit 2 ;;
esac
