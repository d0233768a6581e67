#!/bin/bash
# scripts/check-layers.sh: the include rule of the tree, checked (./dev.sh test runs it).
#
# Each folder may include only the folders below it. Outside agent/:
#   common, bpf (the ABI headers)        nothing of ours
#   kernel-compat                        common, bpf
#   symbolizer, exporters                common
#   unwind                               common, bpf, symbolizer
# Inside agent/ (one CMake library per stage, agent/CMakeLists.txt):
#   host, config, process, collect       the folders outside agent/ only
#   aggregate                            collect, process
#   pipeline                             aggregate, collect, config, host, process
#   serve, push                          pipeline and what it may include
#   app                                  everything
# And third-party libraries stay with their stage: civetweb in serve only, curl in push
# only, CLI11 in app only; collectors use no Prometheus, HTTP or symbolizer.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
report() {
    echo "  $1" >&2
    fail=1
}

# allowed FOLDER -> space-separated folders (as written in includes) FOLDER may include
allowed() {
    local low="common bpf"
    local mid="$low kernel-compat symbolizer unwind exporters"
    case $1 in
    common | bpf) echo "$1" ;;
    kernel-compat) echo "$1 $low" ;;
    symbolizer | exporters) echo "$1 common" ;;
    unwind) echo "$1 $low symbolizer" ;;
    agent/host | agent/config | agent/process) echo "$1 $mid" ;;
    agent/collect) echo "$1 common bpf kernel-compat unwind" ;;
    agent/aggregate) echo "$1 $mid agent/collect agent/process" ;;
    agent/pipeline) echo "$1 $mid agent/aggregate agent/collect agent/config agent/host agent/process" ;;
    agent/serve | agent/push)
        echo "$1 $mid agent/pipeline agent/aggregate agent/collect agent/config agent/host agent/process"
        ;;
    agent/app) echo "$1 $mid agent/pipeline agent/aggregate agent/collect agent/config agent/host agent/process agent/serve agent/push" ;;
    *) return 1 ;;
    esac
}

# Third-party headers a folder must not include: pattern -> folders allowed to.
third_party_owner() {
    case $1 in
    civetweb.h) echo "agent/serve" ;;
    curl/) echo "agent/push" ;;
    CLI/) echo "agent/app" ;;
    prometheus/) echo "exporters agent/serve agent/push" ;;
    esac
}

folders=(common bpf kernel-compat symbolizer exporters unwind)
for d in agent/*/; do folders+=("${d%/}"); done

checked=0
for folder in "${folders[@]}"; do
    if ! ok=$(allowed "$folder"); then
        report "$folder: a folder the rule does not know (add it to scripts/check-layers.sh and agent/README.md)"
        continue
    fi
    while IFS= read -r file; do
        checked=$((checked + 1))
        while IFS= read -r line; do
            inc=${line#*\"}
            inc=${inc%%\"*}
            [[ $inc == */* && $inc != ../* ]] || continue # same folder, or generated ("syscalls.skel.h")
            top=${inc%%/*}
            [[ $top == agent ]] && top=agent/$(cut -d/ -f2 <<<"$inc")
            case " $ok " in
            *" $top "*) ;;
            *)
                # not one of our folders (e.g. "linux/types.h" in quotes): nothing to check
                [[ -d $top ]] || continue
                report "$file includes \"$inc\": $folder may include only: $ok"
                ;;
            esac
        done < <(grep -E '^\s*#\s*include\s*"' "$file" || true)
        while IFS= read -r line; do
            inc=${line#*<}
            inc=${inc%%>*}
            for pat in civetweb.h curl/ CLI/ prometheus/; do
                [[ $inc == "$pat"* ]] || continue
                owners=$(third_party_owner "$pat")
                [[ " $owners " == *" $folder "* ]] || report "$file includes <$inc>: only $owners may"
            done
        done < <(grep -E '^\s*#\s*include\s*<' "$file" || true)
    done < <(find "$folder" \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) -not -path '*/vmlinux/*' | sort)
done

if [[ $fail != 0 ]]; then
    echo "check-layers: includes against the layer rule above (scripts/check-layers.sh, agent/README.md)" >&2
    exit 1
fi
echo "check-layers: $checked files follow the layer rule"
