"""Natron: create a Text to Video node and render it with a Write node.

Run it in Natron's Script Editor, where `app` is the current project. For the farm, save the
project and render its Write node headless (the node then generates on demand):

    NatronRenderer -w Write1 1-81 project.ntp

Choice parameters take the option's index (docs/node.md lists them).
"""

import NatronEngine  # noqa: F401  (provided by Natron)

FRAMES = 81

t2v = app.createNode("org.texttovideo.TextToVideo")  # noqa: F821  (app is Natron's)
t2v.getParam("prompt").setValue("a paper boat drifting on a calm lake, overcast light")
t2v.getParam("seed").setValue(3)
t2v.getParam("model").setValue("/models/Wan2.2-TI2V-5B-Diffusers")
t2v.getParam("frames").setValue(FRAMES)
t2v.getParam("first_frame").setValue(1)
t2v.getParam("colour").setValue(1)  # 0 sRGB display, 1 linear, 2 Rec.709, 3 auto (the default: linear in Natron)

write = app.createNode("fr.inria.openfx.WriteOIIO")  # noqa: F821
write.connectInput(0, t2v)
write.getParam("filename").setValue("renders/boat/boat.####.exr")
# Write the node's own size: Natron's writers default to the project format (1920x1080 in a new
# project), which would put the clip in the bottom-left corner of a larger black frame.
write.getParam("formatType").setValue(0)  # 0 Input Format, 1 Project Format, 2 Fixed Format
write.setScriptName("Write1")
app.render(write, 1, FRAMES)  # noqa: F821
