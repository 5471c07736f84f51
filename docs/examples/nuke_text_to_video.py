"""Nuke: create a Text to Video node, set its knobs, and render it through a Write node.

Run inside Nuke's Script Editor, or headless:

    nuke -t docs/examples/nuke_text_to_video.py

Knob names are the node's parameter script names (docs/node.md). In a render without a GUI
(`nuke -t`, `nuke -x`) the node generates the clip on demand: pressing Generate is not needed.
"""

import nuke

MODEL = "/models/Wan2.2-TI2V-5B-Diffusers"  # empty string: the bundle's demo model
FIRST_FRAME = 1
FRAMES = 81  # 4k+1

node = nuke.createNode("OFXorg.texttovideo.TextToVideo_v1", inpanel=False)
node.setInput(0, None)  # createNode connects the selected node to Source (image-to-video)
node["prompt"].setValue("a red fox running through fresh snow, golden hour sunlight, slow dolly in")
node["seed"].setValue(7)
node["steps"].setValue(50)
node["model"].setValue(MODEL)
node["resolution"].setValue("832x480")  # or "custom" with the width and height knobs
node["frames"].setValue(FRAMES)
node["first_frame"].setValue(FIRST_FRAME)
node["colour"].setValue("linear")  # what the default "auto" gives in Nuke (scene-linear): see docs/user-guide.md

write = nuke.nodes.Write(file="renders/fox/fox.####.exr", file_type="exr")
write.setInput(0, node)
nuke.execute(write, FIRST_FRAME, FIRST_FRAME + FRAMES - 1)
