#!/usr/bin/env bash
# The package (issue 15, item 7): builds the .deb from a Release build with
# cpack, checks what `cmake --install` installs, installs the .deb with
# `dpkg -i`, checks what it installed (both systemd units pass
# `systemd-analyze verify`, `buckwild version`, the man pages, the bash
# completion, the example configuration) and purges it again.
#
#   tests/e2e/package.sh        as root, after a build configured with
#                               -DCMAKE_INSTALL_PREFIX=/usr (scripts/test.sh
#                               builds so and runs this)
#   BUILD_DIR=DIR               that build (default: build)
#
# It installs and removes a system package, so it refuses to start, and says
# why, if dpkg knows a buckwild package already or any file the package holds
# exists: it never removes what it did not install. systemd is not PID 1 here:
# the units are verified, not started. Ends with "N passed, M failed" and exits
# non-zero if anything failed.
source "$(dirname "$0")/lib.sh"

BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
PSK_FILE=/etc/buckwild/psk
RUN_DIR=/run/buckwild
# Files the package installs (directories aside), relative to /.
EXPECTED_FILES="etc/buckwild/buckwild.toml
etc/logrotate.d/buckwild
usr/bin/buckwild
usr/lib/systemd/system/buckwild.service
usr/lib/systemd/system/buckwild@.service
usr/share/bash-completion/completions/buckwild
usr/share/man/man5/buckwild.toml.5.gz
usr/share/man/man8/buckwild.8.gz
usr/share/snmp/mibs/BUCKWILD-MIB.txt"

INSTALLED=0      # 1 once dpkg -i ran: cleanup purges the package
MADE_PSK=0       # 1 once this run wrote $PSK_FILE
MADE_RUN_DIR=0   # 1 if this run created $RUN_DIR
FAKE_SOCKET=""   # a control socket this run made for completion

package_cleanup() {
  if [[ -n $FAKE_SOCKET ]]; then rm -f "$FAKE_SOCKET"; fi
  if ((MADE_RUN_DIR)); then rmdir "$RUN_DIR" 2>/dev/null || log "cleanup: $RUN_DIR is not empty, left in place"; fi
  if ((MADE_PSK)); then rm -f "$PSK_FILE"; fi
  if ((INSTALLED)) && dpkg-query -W buckwild >/dev/null 2>&1; then
    log "cleanup: dpkg --purge buckwild"
    dpkg --purge buckwild >/dev/null 2>&1 || log "cleanup: dpkg --purge buckwild failed"
  fi
  cleanup
}
trap package_cleanup EXIT

# files_under DIR: the files and links under DIR, relative to it, sorted.
files_under() { (cd "$1" && find . -mindepth 1 ! -type d | sed 's#^\./##' | LC_ALL=C sort); }

# same_files WHAT EXPECTED ACTUAL: compares two file lists and logs the difference.
same_files() {
  local what=$1
  if [[ $2 != "$3" ]]; then
    log "$what: expected vs actual:"
    diff <(echo "$2") <(echo "$3") >&2 || true
    return 1
  fi
}

# --- preconditions: a build for /usr, and nothing of buckwild on the machine

[[ $(id -u) -eq 0 ]] || die "run as root (it installs and removes the package)"
[[ -f $BUILD_DIR/CPackConfig.cmake ]] || die "no CPack configuration in $BUILD_DIR: configure and build first"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
[[ $prefix == /usr ]] ||
  die "$BUILD_DIR is configured for the prefix '$prefix'; the .deb needs -DCMAKE_INSTALL_PREFIX=/usr (scripts/test.sh configures so)"
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD_DIR/CMakeCache.txt")
[[ -n $VERSION ]] || die "no CMAKE_PROJECT_VERSION in $BUILD_DIR/CMakeCache.txt"
if status=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' buckwild 2>/dev/null); then
  die "dpkg knows a buckwild package already ($status): this test installs and purges its own and will not touch that one; remove it first (dpkg --purge buckwild)"
fi
while read -r file; do
  [[ ! -e /$file && ! -L /$file ]] || die "/$file exists already (not from a buckwild package): this test would overwrite and then remove it; move it away first"
done <<<"$EXPECTED_FILES"$'\n'"${PSK_FILE#/}"
ETC_DIR_EXISTED=0  # an /etc/buckwild that held other files before stays after the purge
[[ -e /etc/buckwild ]] && ETC_DIR_EXISTED=1

log "building the .deb from $BUILD_DIR (version $VERSION)"
cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$WORK/deb" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log" >&2; die "cpack failed"; }
DEB=$WORK/deb/buckwild_${VERSION}_$(dpkg --print-architecture).deb
[[ -f $DEB ]] || { cat "$WORK/cpack.log" >&2; die "cpack made no $DEB"; }

# --- the .deb and `cmake --install`, before anything is installed

t_deb_control() {
  local field value
  for field in Package:buckwild Version:"$VERSION" Section:net Priority:optional; do
    value=$(dpkg-deb -f "$DEB" "${field%%:*}")
    [[ $value == "${field#*:}" ]] || { log "${field%%:*}: '$value', expected '${field#*:}'"; return 1; }
  done
  [[ -n $(dpkg-deb -f "$DEB" Maintainer) && -n $(dpkg-deb -f "$DEB" Description) ]] ||
    { log "no Maintainer or Description"; return 1; }
  # Depends: what dpkg-shlibdeps found the binary links, and procps (/bin/kill).
  local depends
  depends=$(dpkg-deb -f "$DEB" Depends)
  log "Depends: $depends"
  for value in libc6 libssl3 libsodium23 libbpf1 procps; do
    [[ ", $depends" == *", $value "* || ", $depends," == *", $value,"* ]] ||
      { log "Depends lacks $value"; return 1; }
  done
  # The example configuration is a conffile, and there are no maintainer
  # scripts (installing does not enable or start anything).
  dpkg-deb -e "$DEB" "$WORK/control" || return 1
  [[ $(cat "$WORK/control/conffiles") == $'/etc/buckwild/buckwild.toml\n/etc/logrotate.d/buckwild' ]] ||
    { log "conffiles: $(cat "$WORK/control/conffiles")"; return 1; }
  local script
  for script in preinst postinst prerm postrm; do
    [[ ! -e $WORK/control/$script ]] || { log "the .deb has a $script"; return 1; }
  done
}

t_deb_files() {
  mkdir -p "$WORK/deb-root"
  dpkg-deb -x "$DEB" "$WORK/deb-root"
  same_files "files in the .deb" "$EXPECTED_FILES" "$(files_under "$WORK/deb-root")"
}

# A packager's install: the prefix the build was configured with (/usr), into
# a staging directory.
t_install_destdir() {
  DESTDIR=$WORK/stage cmake --install "$BUILD_DIR" >/dev/null || return 1
  same_files "DESTDIR=... cmake --install" "$EXPECTED_FILES" "$(files_under "$WORK/stage")" || return 1
  # The units name the installed binary and configuration.
  grep -qx 'ExecStart=/usr/bin/buckwild run --config /etc/buckwild/buckwild.toml' \
    "$WORK/stage/usr/lib/systemd/system/buckwild.service" || { log "buckwild.service: wrong ExecStart"; return 1; }
  grep -qx 'ExecStart=/usr/bin/buckwild run --config /etc/buckwild/%i.toml' \
    "$WORK/stage/usr/lib/systemd/system/buckwild@.service" || { log "buckwild@.service: wrong ExecStart"; return 1; }
}

# `cmake --install --prefix DIR`: everything moves under DIR except the
# configuration, whose place for a /usr build is /etc (GNUInstallDirs), which
# no prefix moves; DESTDIR keeps that inside the test's directory too.
t_install_prefix() {
  local prefix=/opt/buckwild-test
  DESTDIR=$WORK/prefixed cmake --install "$BUILD_DIR" --prefix "$prefix" >/dev/null || return 1
  local expected
  expected=$(sed -e "s#^usr/#${prefix#/}/#" <<<"$EXPECTED_FILES" | LC_ALL=C sort)
  same_files "cmake --install --prefix $prefix" "$expected" "$(files_under "$WORK/prefixed")"
}

# --- installed

t_dpkg_install() {
  INSTALLED=1
  dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; return 1; }
  [[ $(dpkg-query -W -f='${Status}' buckwild) == "install ok installed" ]] || return 1
  # dpkg knows every file, and the configuration as a conffile.
  local listed
  listed=$(dpkg -L buckwild | while read -r f; do [[ -d $f ]] || echo "${f#/}"; done | LC_ALL=C sort)
  same_files "dpkg -L buckwild" "$EXPECTED_FILES" "$listed" || return 1
  dpkg-query -W -f='${Conffiles}' buckwild | grep -q '^ /etc/buckwild/buckwild.toml ' ||
    { log "dpkg does not list /etc/buckwild/buckwild.toml as a conffile"; return 1; }
  # logrotate reads the installed rules without a complaint (debug mode: it
  # rotates nothing).
  local rotate
  rotate=$(logrotate --debug /etc/logrotate.d/buckwild 2>&1) || { log "$rotate"; return 1; }
  ! grep -qi 'error' <<<"$rotate" || { log "$rotate"; return 1; }
}

t_version() {
  [[ $(command -v buckwild) == /usr/bin/buckwild ]] || { log "buckwild on PATH: $(command -v buckwild)"; return 1; }
  local out
  out=$(buckwild version) || return 1
  log "$(head -n1 <<<"$out")"
  [[ $(head -n1 <<<"$out") == "buckwild $VERSION (protocol v"* ]]
}

# verify_unit UNIT_FILE: systemd-analyze verify passes and says nothing (it
# checks the syntax, that ExecStart's binary exists and that the
# Documentation= man pages open).
verify_unit() {
  local out rc=0
  out=$(systemd-analyze verify "$1" 2>&1) || rc=$?
  [[ -z $out ]] || log "$out"
  [[ $rc -eq 0 && -z $out ]]
}

t_man() {
  local page out section name title
  for page in "8 buckwild BUCKWILD(8)" "5 buckwild.toml BUCKWILD.TOML(5)"; do
    read -r section name title <<<"$page"
    [[ $(man -w "$name") == /usr/share/man/man$section/$name.$section.gz ]] ||
      { log "man -w $name: $(man -w "$name" 2>&1)"; return 1; }
    out=$(MANWIDTH=80 man --warnings -P cat "$name" 2>"$WORK/man.err") || { cat "$WORK/man.err" >&2; return 1; }
    [[ ! -s $WORK/man.err ]] || { log "man $name warns: $(cat "$WORK/man.err")"; return 1; }
    [[ $(head -n1 <<<"$out") == "$title"* && $out == *NAME*SYNOPSIS*DESCRIPTION* ]] ||
      { log "man $name: $(head -n3 <<<"$out")"; return 1; }
  done
}

# complete WORD...: what the installed completion offers for the command line
# WORD... (the last word is the one being completed), one a line. It is loaded
# the way an interactive bash does: by bash-completion, on first use.
complete_words() {
  (cd "$WORK/completion" && bash --norc --noprofile -c '
    source /usr/share/bash-completion/bash_completion
    __load_completion buckwild || exit 3
    spec=$(complete -p buckwild) || exit 4
    [[ $spec == *"-F _buckwild buckwild" ]] || exit 5
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _buckwild buckwild "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
    printf "%s\n" "${COMPREPLY[@]}"' complete "$@")
}

# expect_completion WANT WORD...: every word of WANT is offered for WORD...
expect_completion() {
  local want=$1 got word
  shift
  got=$(complete_words "$@") || { log "completion failed to load (exit $?)"; return 1; }
  for word in $want; do
    grep -qxF -- "$word" <<<"$got" || { log "'$*' completes to '${got//$'\n'/ }', without '$word'"; return 1; }
  done
}

t_completion() {
  mkdir -p "$WORK/completion/dir"
  touch "$WORK/completion/tunnel.toml" "$WORK/completion/notes.txt"
  # Subcommands: every one `buckwild --help` lists.
  local commands command options
  commands=$(buckwild --help | awk '/^Subcommands:/ {on = 1; next} on && /^$/ {exit} on && /^  [a-z]/ {print $1}')
  [[ -n $commands ]] || { log "no subcommands in buckwild --help"; return 1; }
  expect_completion "$commands" buckwild "" || return 1
  expect_completion "check-config" buckwild che || return 1
  # Options: every long option each subcommand's --help lists.
  for command in $commands; do
    options=$(buckwild "$command" --help | awk '/^Options:/ {on = 1; next} on && /^$/ {exit}
      on && /^  -/ { for (i = 1; i <= NF; i++) if (match($i, /--[a-z][a-z-]*/)) { print substr($i, RSTART, RLENGTH); break } }')
    expect_completion "$options" buckwild "$command" -- || return 1
  done
  # Configuration files for run -c/--config and check-config (and directories
  # to walk into), nothing else.
  local arg
  for arg in "run -c" "run --config" "check-config"; do
    # shellcheck disable=SC2086  # two words on purpose
    expect_completion "tunnel.toml dir" buckwild $arg "" || return 1
    # shellcheck disable=SC2086
    ! complete_words buckwild $arg "" | grep -qx notes.txt || { log "'$arg' offers notes.txt"; return 1; }
  done
  # DEVICE: the tunnels whose control sockets are in /run/buckwild.
  local device=pkgt$$
  if [[ ! -d $RUN_DIR ]]; then
    mkdir -m 0755 "$RUN_DIR"
    MADE_RUN_DIR=1
  fi
  FAKE_SOCKET=$RUN_DIR/$device.sock
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$FAKE_SOCKET" || return 1
  expect_completion "$device" buckwild status "" || return 1
  expect_completion "$device" buckwild stop "${device:0:3}"
}

t_example_config() {
  (umask 077 && buckwild genpsk >"$PSK_FILE")
  MADE_PSK=1
  local out
  out=$(buckwild check-config /etc/buckwild/buckwild.toml 2>&1) || { log "$out"; return 1; }
  log "$out"
  [[ $out == "/etc/buckwild/buckwild.toml: ok (1 PSKs, 1 peers)" ]]
}

t_purge() {
  rm -f "$PSK_FILE"
  MADE_PSK=0
  dpkg --purge buckwild >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; return 1; }
  INSTALLED=0
  ! dpkg-query -W buckwild >/dev/null 2>&1 || { log "dpkg still knows buckwild"; return 1; }
  local file
  while read -r file; do
    [[ ! -e /$file ]] || { log "/$file is still there"; return 1; }
  done <<<"$EXPECTED_FILES"
  if ((!ETC_DIR_EXISTED)) && [[ -e /etc/buckwild ]]; then
    log "/etc/buckwild is still there: $(ls -A /etc/buckwild)"
    return 1
  fi
}

check ".deb control: name, version, section, shlibs Depends, conffile, no scripts" t_deb_control
check ".deb holds exactly the expected files" t_deb_files
check "cmake --install with DESTDIR: the expected files, units naming them" t_install_destdir
check "cmake --install --prefix: all but /etc under the prefix" t_install_prefix
check "dpkg -i installs it" t_dpkg_install
check "buckwild version" t_version
check "systemd-analyze verify buckwild.service" verify_unit /usr/lib/systemd/system/buckwild.service
check "systemd-analyze verify buckwild@.service" verify_unit /usr/lib/systemd/system/buckwild@.service
check "man buckwild, man buckwild.toml" t_man
check "bash completion: subcommands, options, files, devices" t_completion
check "the installed example configuration passes check-config" t_example_config
check "dpkg --purge leaves nothing behind" t_purge

((failed == 0)) || log "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
