#!/usr/bin/env bash
# Runs the `buckwild` binary and checks exit codes and message shapes.
# Usage: cli_test.sh BUCKWILD_BINARY SOURCE_DIR CASE
set -euo pipefail

bin=$1
src=$2
case_name=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Overrides from the caller's environment must not change the outcome.
while IFS='=' read -r name _; do
  [[ $name == BUCKWILD_* ]] && unset "$name"
done < <(env)

fail() {
  echo "FAIL ($case_name): $*" >&2
  exit 1
}

# run CMD...: sets $code, $out, $err.
run() {
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  code=$?
  set -e
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

expect_code() {
  [[ $code -eq $1 ]] || fail "exit code $code, expected $1; stdout: $out; stderr: $err"
}

key=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=

case $case_name in
  usage)
    run "$bin"
    expect_code 2
    run "$bin" frobnicate
    expect_code 2
    run "$bin" check-config
    expect_code 2
    [[ $err == *FILE* ]] || fail "usage error does not name the missing FILE: $err"
    run "$bin" run --config /etc/buckwild/buckwild.toml --bogus-flag
    expect_code 2
    ;;
  help)
    run "$bin" --help
    expect_code 0
    for word in check-config genpsk version "BUCKWILD_<SECTION>_<KEY>" "Exit status"; do
      [[ $out == *"$word"* ]] || fail "--help does not mention $word"
    done
    run "$bin" check-config --help
    expect_code 0
    [[ $out == *"FILE:LINE:COL: key: problem"* ]] || fail "check-config --help does not show the error form"
    ;;
  version)
    run "$bin" version
    expect_code 0
    [[ $(head -1 <<<"$out") == "buckwild 0.1.0 (protocol v1)" ]] || fail "first line: $out"
    [[ $out == *OpenSSL\ 3* ]] || fail "no OpenSSL version: $out"
    [[ $out == *libsodium\ 1.* ]] || fail "no libsodium version: $out"
    ;;
  genpsk)
    run "$bin" genpsk
    expect_code 0
    [[ $out =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "not 32 bytes of base64: $out"
    [[ $(base64 -d <<<"$out" | wc -c) -eq 32 ]] || fail "does not decode to 32 bytes"
    first=$out
    run "$bin" genpsk
    [[ $out != "$first" ]] || fail "two keys in a row were equal"
    # A generated key is accepted by check-config through key_file.
    printf '%s\n' "$out" >"$tmp/psk"
    chmod 600 "$tmp/psk"
    printf '[network]\nvirtual_address = "10.77.0.1/24"\n[[psk]]\nid = "gen"\nkey_file = "psk"\n' >"$tmp/c.toml"
    run "$bin" check-config "$tmp/c.toml"
    expect_code 0
    ;;
  check_ok)
    printf '[network]\nvirtual_address = "10.77.0.1/24"\n[[psk]]\nid = "a"\nkey = "%s"\n[[peer]]\nname = "b"\nendpoint = "10.200.0.2"\nvirtual_address = "10.77.0.2"\n' \
      "$key" >"$tmp/good.toml"
    run "$bin" check-config "$tmp/good.toml"
    expect_code 0
    [[ $out == "$tmp/good.toml: ok (1 PSKs, 1 peers)" ]] || fail "stdout: $out"
    [[ -z $err ]] || fail "stderr not empty: $err"
    ;;
  check_errors)
    cat >"$tmp/bad.toml" <<TOML
[network]
virtual_address = "10.77.0.1/24"
mtu = 100
colour = "blue"
[protocol]
hop_interval_ms = 100
[[psk]]
id = "a"
key = "NotBase64!SecretText"
TOML
    run "$bin" check-config "$tmp/bad.toml"
    expect_code 1
    [[ -z $out ]] || fail "stdout not empty: $out"
    mapfile -t lines <<<"$err"
    [[ ${#lines[@]} -eq 4 ]] || fail "expected 4 problems, got: $err"
    shape="^$tmp/bad\\.toml:[0-9]+:[0-9]+: [][a-z_.0-9]+: .+\$"
    for line in "${lines[@]}"; do
      [[ $line =~ $shape ]] || fail "line does not match FILE:LINE:COL: key: problem: $line"
    done
    [[ ${lines[0]} == "$tmp/bad.toml:3:7: network.mtu: "* ]] || fail "first: ${lines[0]}"
    [[ ${lines[1]} == "$tmp/bad.toml:4:1: network.colour: unknown key" ]] || fail "second: ${lines[1]}"
    [[ ${lines[2]} == "$tmp/bad.toml:6:19: protocol.hop_interval_ms: "* ]] || fail "third: ${lines[2]}"
    [[ ${lines[3]} == "$tmp/bad.toml:9:7: psk[0].key: is not valid base64"* ]] || fail "fourth: ${lines[3]}"
    [[ $err != *SecretText* ]] || fail "the key text was echoed: $err"
    run "$bin" check-config "$tmp/missing.toml"
    expect_code 1
    [[ $err == "$tmp/missing.toml: cannot open: No such file or directory" ]] || fail "missing file: $err"
    ;;
  check_env)
    printf '[network]\nvirtual_address = "10.77.0.1/24"\n[[psk]]\nid = "a"\nkey = "%s"\n' "$key" >"$tmp/env.toml"
    run env BUCKWILD_LOGGING_LEVEL=debug BUCKWILD_TESTING_CLOCK_OFFSET_MS=40 "$bin" check-config "$tmp/env.toml"
    expect_code 0
    run env BUCKWILD_NETWORK_MTU=abc "$bin" check-config "$tmp/env.toml"
    expect_code 1
    [[ $err == 'env BUCKWILD_NETWORK_MTU: expected an integer, got "abc"' ]] || fail "stderr: $err"
    ;;
  examples)
    for host in alice bob; do
      run "$bin" check-config "$src/examples/$host.toml"
      expect_code 0
      [[ $out == "$src/examples/$host.toml: ok (1 PSKs, 1 peers)" ]] || fail "$host: $out $err"
    done
    # The packaged config names /etc/buckwild/psk; check it against a key of ours.
    run "$bin" genpsk
    printf '%s\n' "$out" >"$tmp/psk"
    chmod 600 "$tmp/psk"
    sed "s#/etc/buckwild/psk#$tmp/psk#" "$src/packaging/buckwild.toml" >"$tmp/packaged.toml"
    run "$bin" check-config "$tmp/packaged.toml"
    expect_code 0
    [[ $out == "$tmp/packaged.toml: ok (1 PSKs, 1 peers)" ]] || fail "packaging/buckwild.toml: $out $err"
    ;;
  control)
    # status, reload and stop without a daemon: the message says what to do.
    for cmd in status reload stop; do
      run "$bin" "$cmd" --help
      expect_code 0
      [[ $out == *"--socket PATH"* && $out == *DEVICE* ]] || fail "$cmd --help: $out"
      run "$bin" "$cmd" --socket "$tmp/bw9.sock"
      expect_code 1
      [[ -z $out ]] || fail "$cmd: stdout not empty: $out"
      [[ $err == "buckwild $cmd: cannot connect to $tmp/bw9.sock: No such file or directory (is buckwild running for bw9?)" ]] ||
        fail "$cmd: stderr: $err"
      run "$bin" "$cmd" bw0 --socket "$tmp/bw9.sock"
      expect_code 2
    done
    run "$bin" status --help
    [[ $out == *--json* && $out == *"JSON array"* ]] || fail "status --help does not explain --json: $out"
    [[ $out == *--prometheus* ]] || fail "status --help does not name --prometheus: $out"
    run "$bin" status --json --prometheus
    expect_code 2
    run "$bin" status --prometheus --socket "$tmp/bw9.sock"
    expect_code 1
    # rekey names a peer first; without one it is a usage error.
    run "$bin" rekey --help
    expect_code 0
    [[ $out == *PEER* && $out == *"--socket PATH"* && $out == *DEVICE* ]] || fail "rekey --help: $out"
    run "$bin" rekey --socket "$tmp/bw9.sock"
    expect_code 2
    run "$bin" rekey bob --socket "$tmp/bw9.sock"
    expect_code 1
    [[ $err == "buckwild rekey: cannot connect to $tmp/bw9.sock: No such file or directory (is buckwild running for bw9?)" ]] ||
      fail "rekey: stderr: $err"
    ;;
  *)
    fail "unknown case"
    ;;
esac
echo "ok: $case_name"
