"""Render a core_array template for a hardware spec under another module name.

``render.py TEMPLATE HW.yaml OUT.v TOP`` writes OUT.v and prints
``rows cols a_bits w_bits acc_bits adder col_bits`` (for run.sh).
"""

import sys
from dataclasses import asdict
from pathlib import Path

import jinja2

from autochip.builder.core import array_params, core_params
from autochip.hw.spec import load_hardware_spec

template, hw, out, top = sys.argv[1:5]
p = core_params(load_hardware_spec(Path(hw)))
fields = asdict(array_params(p))
fields["top"] = top
env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(template).parent)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
text = env.get_template(Path(template).name).render(**fields, col_bits=p.col_bits, adder=p.adder)
Path(out).write_text(text)
print(p.rows, p.cols, p.a_bits, p.w_bits, p.acc_bits, p.adder, p.col_bits)
