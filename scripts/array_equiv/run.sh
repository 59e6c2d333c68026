#!/bin/bash
# Two renderings of core_array side by side in one Verilator model (eq), or one alone (old|new)
# for its speed, driven by random stimulus (valid, last, operands, PE mode, col_sel) from main.cpp.
#   scripts/array_equiv/run.sh OLD.v.j2 NEW.v.j2 HW.yaml eq|old|new [CYCLES] [WORKDIR]
# eq prints mism=0 when every output of the two arrays is equal in every cycle (exit 1 otherwise).
# OLD / NEW: core_array templates (e.g. `git show 9df059f:templates/core_array.v.j2 > old.v.j2`).
set -e
OLDT=$(realpath "$1"); NEWT=$(realpath "$2"); HW=$(realpath "$3"); MODE=$4; N=${5:-200000}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
WORK=${6:-$ROOT/build/array_equiv}; mkdir -p "$WORK"; cd "$WORK"
NAME=$(basename "$HW" .yaml)_$MODE
export PYTHONPATH=$ROOT
PY=$ROOT/.venv/bin/python
V=$($PY -c "from autochip.builder.tools import find_tool; print(find_tool('verilator'))")
T=$ROOT/templates
read -r R C AW WW ACC _ADD CBITS < <($PY "$HERE/render.py" "$OLDT" "$HW" "arr_old_$NAME.v" arr_old)
$PY "$HERE/render.py" "$NEWT" "$HW" "arr_new_$NAME.v" arr_new >/dev/null
AB=$((R*AW)); BB=$((C*(WW+1))); OB=$((R*ACC))
SUP="$T/core_pe.v $T/autochip_delay.v $T/autochip_row_mux.v"
if [ "$MODE" = eq ]; then SRC="$HERE/eq_top.v arr_old_$NAME.v arr_new_$NAME.v $SUP"; TOPM=eq_top; DEF=-DEQ
else sed "s/ARR/arr_$MODE/" "$HERE/one_top.v" > "one_top_$NAME.v"; SRC="one_top_$NAME.v arr_${MODE}_$NAME.v $SUP"; TOPM=one_top; DEF=""; fi
rm -rf "obj_$NAME"
# shellcheck disable=SC2086
nice -n 5 "$V" --cc --exe --build -j 1 -Wno-fatal -Wno-lint -Wno-style --x-assign fast --x-initial fast -O3 --output-split 0 \
  --top-module $TOPM -GAB=$AB -GBB=$BB -GCB=$CBITS -GOB=$OB $SRC "$HERE/main.cpp" -Mdir "obj_$NAME" -o sim \
  -CFLAGS "-O3 -march=native -DVTOPCLS=V$TOPM $DEF -DTOPH=\\\"V$TOPM.h\\\" -DAB=$AB -DBB=$BB -DCB=$CBITS" \
  -MAKEFLAGS "OPT_FAST=-O3 OPT_GLOBAL=-O2" > "obj_$NAME.log" 2>&1 || { tail -30 "obj_$NAME.log"; exit 1; }
nice -n 5 "./obj_$NAME/sim" "$N"
