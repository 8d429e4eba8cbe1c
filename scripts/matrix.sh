#!/usr/bin/env bash
# The runtime matrix: runs LiveCov's whole test suite on each supported Erlang/OTP + Elixir.
#
#   scripts/matrix.sh all            # 25, 27 and 29, one after the other
#   scripts/matrix.sh 27 29          # some of them
#   scripts/matrix.sh 29 -- test/live_cov/cover_oracle_test.exs   # arguments for `mix test`
#   scripts/matrix.sh --shell 27     # a shell in that runtime's root, the project copied in
#   scripts/matrix.sh all --bench hot_path [-- ARGS]   # a benchmark program in each runtime
#
# On a runtime with native line counters (27, 29) the suite runs once per counter backend:
# with the default (`:auto`, which picks the native backend there) and with
# LIVE_COV_BACKEND=nif. LIVE_COV_MATRIX_BACKENDS="auto" runs the first only.
#
#   25  this machine's Erlang/OTP 25 + Elixir 1.14 (Debian bookworm, installed by setup.sh)
#   27  OTP 27 + Elixir 1.18 (Debian trixie root)
#   29  OTP 29 + Elixir 1.20 (Debian sid root)
#
# Roots are made once with debootstrap (about 2 minutes each) and cached under
# $LIVE_COV_ROOTS (default /var/cache/live_cov/roots); a root is remade when its package
# list changes. The NIF is built once, here, and copied in (the roots have no cargo; a NIF
# built against this machine's older glibc loads there). Each run copies the project into
# a fresh directory of the root, checks that it compiles without a warning
# (`mix compile --warnings-as-errors`) and runs `mix test`; a summary table closes the run.
# Needs root (debootstrap, mount, chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$(pwd)
ROOTS=${LIVE_COV_ROOTS:-/var/cache/live_cov/roots}

# What a root holds: the runtime and the OTP applications LiveCov and its tests use (made by
# debootstrap), then the report consumers the tests validate against (genhtml, Chromium,
# prometheus_client, installed with apt inside the root: debootstrap cannot configure
# Chromium's desktop dependencies itself) and pycobertura (pip).
ROOT_PACKAGES="erlang-nox,erlang-dev,erlang-src,erlang-tools,erlang-inets,erlang-public-key,\
erlang-ssl,erlang-xmerl,erlang-syntax-tools,erlang-parsetools,erlang-runtime-tools,\
erlang-eunit,elixir,git,ca-certificates,locales-all,procps"
ROOT_APT="lcov chromium python3-pip python3-prometheus-client"
ROOT_PIP="pycobertura"
ROOT_SPEC="$ROOT_PACKAGES + $ROOT_APT + $ROOT_PIP"

suite_of() {
  case "$1" in
    27) echo trixie ;;
    29) echo sid ;;
    *) echo "" ;;
  esac
}

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

shell=0
bench=""
versions=()
mix_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    all) versions+=(25 27 29) ;;
    25 | 27 | 29) versions+=("$1") ;;
    --shell) shell=1 ;;
    --bench) shift; bench=${1:?--bench needs a program name (bench/NAME.exs)} ;;
    --) shift; mix_args=("$@"); break ;;
    -h | --help) usage ;;
    *) echo "matrix.sh: unknown runtime or option '$1' (use 25, 27, 29, all, --shell, -- mix args)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#versions[@]} -gt 0 ] || usage

if [ "$(id -u)" != 0 ]; then
  echo "matrix.sh: needs root for debootstrap, mount and chroot (run it with sudo)" >&2
  exit 2
fi

log() { printf '==> [matrix] %s\n' "$*"; }

ensure_host() {
  # OTP 25 / Elixir 1.14 here, the report consumers, and the NIF build: the test build (with
  # the NIFs only the tests and benchmarks use), which the roots get a copy of.
  scripts/setup.sh --consumers
  MIX_ENV=test mix compile
}

ensure_root() {
  local suite=$1 dir="$ROOTS/$1"
  if [ -f "$dir/.live_cov_root" ] && [ "$(cat "$dir/.live_cov_root")" = "$ROOT_SPEC" ]; then
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  log "making the Debian $suite root in $dir (debootstrap, a few minutes)"
  local tmp="$dir.tmp" logf="$ROOTS/$suite.debootstrap.log"
  umount -l "$tmp/proc" "$tmp/dev" 2>/dev/null || true
  rm -rf "$tmp"
  mkdir -p "$ROOTS"
  debootstrap --variant=minbase --include="$ROOT_PACKAGES" "$suite" "$tmp" >"$logf" 2>&1 || {
    echo "matrix.sh: debootstrap of $suite failed; see $logf" >&2
    tail -n 20 "$logf" >&2
    return 1
  }
  cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
  # This machine's CA bundle: package registries may be reached through a proxy it trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/live_cov_host_ca.crt" 2>/dev/null || true
  mount -t proc proc "$tmp/proc"
  mount --rbind /dev "$tmp/dev"
  # sid's Release files may be past their Valid-Until on a machine whose clock is ahead.
  if ! chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get -o Acquire::Check-Valid-Until=false update -qq &&
     apt-get install -y -qq --no-install-recommends $ROOT_APT" >>"$logf" 2>&1; then
    log "WARNING: apt-get install $ROOT_APT failed in the $suite root (see $logf); the tests that use them will say so and skip"
  fi
  chroot "$tmp" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root pip install -q --break-system-packages \
    --root-user-action=ignore --cert /etc/live_cov_host_ca.crt $ROOT_PIP >>"$logf" 2>&1 ||
    log "WARNING: pip install $ROOT_PIP failed in the $suite root; the tests that use it will say so and skip"
  umount -l "$tmp/proc" "$tmp/dev" 2>/dev/null || true
  rm -rf "$dir"
  mv "$tmp" "$dir"
  printf '%s' "$ROOT_SPEC" >"$dir/.live_cov_root"
}

mounted=()
cleanup_mounts() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[$i]}
    umount -l "$m" 2>/dev/null || true
  done
  mounted=()
}
trap cleanup_mounts EXIT

mount_root() {
  local dir=$1
  mountpoint -q "$dir/proc" || { mount -t proc proc "$dir/proc"; mounted+=("$dir/proc"); }
  mountpoint -q "$dir/dev" || { mount --rbind /dev "$dir/dev"; mounted+=("$dir/dev"); }
  cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
}

# The NIF the roots get: the test build (with the NIFs only the tests and benchmarks use),
# built here once (the roots have no cargo). Not priv/native/ of this checkout: tests that
# build LiveCov in another Mix env (the demo) replace that file while they run.
ROOT_NIF=""
build_root_nif() {
  [ -n "$ROOT_NIF" ] && return 0
  cargo build --release --quiet -p live_cov_nif --features test-nifs
  ROOT_NIF="$PROJECT/tmp/matrix/live_cov_nif.so"
  mkdir -p "$(dirname "$ROOT_NIF")"
  cp "${CARGO_TARGET_DIR:-$PROJECT/target}/release/liblive_cov_nif.so" "$ROOT_NIF"
}

# The project as git sees it (tracked and untracked-but-not-ignored files) plus the NIF.
copy_project() {
  local dest=$1
  build_root_nif
  rm -rf "$dest"
  mkdir -p "$dest"
  (git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - ; ) | tar -xf - -C "$dest"
  mkdir -p "$dest/priv/native"
  cp "$ROOT_NIF" "$dest/priv/native/live_cov_nif.so"
}

declare -A result_tests result_failures result_warnings result_status result_runtime result_time result_backend

# The ExUnit summary of a log, as "tests failures". Elixir 1.14-1.19 close with
# "471 tests, 0 failures" (maybe "4 doctests, 467 tests, 2 failures (3 excluded)"), 1.20 with
# "Result: 460 passed" when all passed, else "Result: 445/460 passed (...), 14 invalid" and
# "Failed: 15 tests"; doctests count as tests in both.
parse_summary() {
  local line tests failures passed doctests
  line=$(grep -E '^Result: [0-9]+(/[0-9]+)? passed' "$1" | tail -n 1 || true)
  if [ -n "$line" ]; then
    passed=$(printf '%s' "$line" | sed -E 's/^Result: ([0-9]+).*/\1/')
    tests=$(printf '%s' "$line" | sed -E 's/^Result: [0-9]+\/([0-9]+).*/\1/')
    [[ "$tests" =~ ^[0-9]+$ ]] || tests=$passed
    echo "$tests $((tests - passed))"
    return
  fi
  line=$(grep -E '[0-9]+ tests?, [0-9]+ failures?' "$1" | tail -n 1 || true)
  tests=$(printf '%s' "$line" | grep -oE '[0-9]+ tests?' | grep -oE '[0-9]+' | head -n 1 || true)
  doctests=$(printf '%s' "$line" | grep -oE '[0-9]+ doctests?' | grep -oE '[0-9]+' | head -n 1 || true)
  failures=$(printf '%s' "$line" | grep -oE '[0-9]+ failures?' | grep -oE '[0-9]+' | head -n 1 || true)
  [ -n "$tests" ] && [ -n "$doctests" ] && tests=$((tests + doctests))
  echo "${tests:-?} ${failures:-?}"
}

# Runs `body` (a bash script) in runtime $1 with the project in the current directory.
run_in() {
  local v=$1 body=$2
  if [ "$v" = 25 ]; then
    (cd "$PROJECT" && bash -c "$body")
  else
    local dir="$ROOTS/$(suite_of "$v")"
    mount_root "$dir"
    copy_project "$dir/work/live_cov"
    chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb LIVE_COV_SKIP_NIF=1 LIVE_COV_MATRIX="$v" \
      bash -c "cd /work/live_cov && $body"
  fi
}

runtime_line() {
  run_in "$1" 'printf "OTP %s / Elixir %s" "$(erl -noshell -eval "io:put_chars(erlang:system_info(otp_release)), halt().")" "$(elixir -e "IO.write(System.version())")"'
}

# One leg: a runtime and a counter backend, as "27:auto" or "27:nif".
run_version() {
  local leg=$1 v=${1%%:*} backend=${1##*:}
  local logf="$PROJECT/tmp/matrix/$v.log" backend_env=""
  if [ "$backend" != auto ]; then
    logf="$PROJECT/tmp/matrix/$v-$backend.log"
    backend_env="LIVE_COV_BACKEND=$backend"
  fi
  mkdir -p "$PROJECT/tmp/matrix"
  log "OTP $v, backend $backend: compile (warnings as errors) and mix test"
  local started=$SECONDS
  result_runtime[$leg]="$(runtime_line "$v" 2>/dev/null || echo "?")"
  local args=""
  [ ${#mix_args[@]} -gt 0 ] && args=$(printf ' %q' "${mix_args[@]}")
  local body
  # Compile first, warnings as errors (the count is reported); the tests run either way.
  body="set -o pipefail; export $backend_env MIX_ENV=test LIVE_COV_CACHE_DIR=\$(mktemp -d) ERL_FLAGS=\"\${ERL_FLAGS:-} -enable-feature maybe_expr\";
    mix compile --force --warnings-as-errors 2>&1 | tee /tmp/live_cov_compile.log; compiled=\$?;
    echo __WARNINGS__ \$(grep -c -E '^ *warning:' /tmp/live_cov_compile.log);
    mix test$args; tested=\$?;
    [ \$compiled = 0 ] || echo 'matrix: mix compile --warnings-as-errors failed';
    [ \$compiled = 0 ] && exit \$tested; exit 1"
  set +e
  run_in "$v" "$body" 2>&1 | tee "$logf"
  local status=${PIPESTATUS[0]}
  set -e
  read -r t f < <(parse_summary "$logf")
  result_tests[$leg]=$t
  result_failures[$leg]=$f
  result_warnings[$leg]=$(grep -oE '^__WARNINGS__ [0-9]+' "$logf" | grep -oE '[0-9]+' | tail -n 1 || echo "?")
  result_status[$leg]=$status
  result_time[$leg]=$((SECONDS - started))
  result_backend[$leg]=$(grep -oE '^LiveCov test backend: \{:ok, :[a-z]+\}' "$logf" | grep -oE ':[a-z]+\}' | tr -d ':}' | tail -n 1 || true)
}

ensure_host
for v in "${versions[@]}"; do
  s=$(suite_of "$v")
  [ -z "$s" ] || ensure_root "$s"
done

# A benchmark program in each runtime, its tables printed and kept in tmp/matrix/.
run_bench() {
  local v=$1 logf="$PROJECT/tmp/matrix/bench-$bench-$1.log"
  mkdir -p "$PROJECT/tmp/matrix"
  log "OTP $v: mix live_cov.bench $bench"
  local args=""
  [ ${#mix_args[@]} -gt 0 ] && args=" --$(printf ' %q' "${mix_args[@]}")"
  set +e
  run_in "$v" "export MIX_ENV=test; mix compile >/dev/null && mix live_cov.bench $bench$args" 2>&1 | tee "$logf"
  local status=${PIPESTATUS[0]}
  set -e
  return "$status"
}

if [ -n "$bench" ]; then
  overall=0
  for v in "${versions[@]}"; do run_bench "$v" || overall=1; done
  exit $overall
fi

if [ "$shell" = 1 ]; then
  run_in "${versions[0]}" 'export MIX_ENV=test; exec bash -i'
  exit $?
fi

legs=()
for v in "${versions[@]}"; do
  legs+=("$v:auto")
  if [ "$v" != 25 ]; then
    for b in ${LIVE_COV_MATRIX_BACKENDS:-auto nif}; do
      [ "$b" = auto ] || legs+=("$v:$b")
    done
  fi
done

overall=0
for leg in "${legs[@]}"; do
  run_version "$leg"
  [ "${result_status[$leg]}" = 0 ] || overall=1
done

echo
echo "| runtime | backend | mix test | failures | compile warnings | time | status |"
echo "|---|---|--:|--:|--:|--:|---|"
for leg in "${legs[@]}"; do
  st=ok
  [ "${result_status[$leg]}" = 0 ] || st="FAILED (exit ${result_status[$leg]})"
  shown="${result_backend[$leg]:-?}"
  [ "${leg##*:}" = auto ] && shown="auto: $shown"
  echo "| ${result_runtime[$leg]} | $shown | ${result_tests[$leg]} tests | ${result_failures[$leg]} | ${result_warnings[$leg]} | ${result_time[$leg]} s | $st |"
done
total=0
failed=0
for leg in "${legs[@]}"; do
  [[ "${result_tests[$leg]}" =~ ^[0-9]+$ ]] && total=$((total + result_tests[$leg]))
  [[ "${result_failures[$leg]}" =~ ^[0-9]+$ ]] && failed=$((failed + result_failures[$leg]))
done
echo
echo "matrix: $((total - failed)) passed, $failed failed"
exit $overall
