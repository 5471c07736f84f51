"""Nuke: one Text to Video node and Write per prompt, saved as a script for the farm.

    nuke -t docs/examples/nuke_batch_prompts.py      # writes shots.nk
    nuke -x shots.nk 1-81                             # renders every Write (on the farm)
"""

import nuke

PROMPTS = {
    "fox": "a red fox running through fresh snow",
    "city": "a neon-lit city street at night in the rain, tracking shot",
}

for name, prompt in sorted(PROMPTS.items()):
    node = nuke.createNode("OFXorg.texttovideo.TextToVideo_v1", inpanel=False)
    node.setInput(0, None)  # createNode connects the selected node to the Source input
    node.setName("T2V_" + name)
    node["prompt"].setValue(prompt)
    node["seed"].setValue(1)
    write = nuke.nodes.Write(file="renders/%s/%s.####.exr" % (name, name), file_type="exr")
    write.setName("Write_" + name)
    write.setInput(0, node)

nuke.scriptSaveAs("shots.nk", overwrite=1)
