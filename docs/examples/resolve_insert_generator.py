"""DaVinci Resolve: put a Text to Video generator on the current timeline.

Run from Workspace > Console (Py3) or an external script with Resolve's scripting environment
set up (RESOLVE_SCRIPT_API / PYTHONPATH, see Resolve's scripting README). The API inserts the
generator at the playhead; its parameters (prompt, model, ...) are then set in the Inspector,
because Resolve's scripting API has no call to set an OFX generator's parameters.
"""

try:
    import DaVinciResolveScript as dvr_script
except ImportError:  # inside Resolve's console, `resolve` already exists
    dvr_script = None

resolve = dvr_script.scriptapp("Resolve") if dvr_script else resolve  # noqa: F821
project = resolve.GetProjectManager().GetCurrentProject()
timeline = project.GetCurrentTimeline()
if timeline is None:
    raise SystemExit("open a timeline first")

item = timeline.InsertOFXGeneratorIntoTimeline("Text to Video")
if item is None:
    raise SystemExit("Text to Video was not found: is the plugin installed and enabled (see docs/troubleshooting.md)?")
print("inserted", item.GetName(), "from frame", item.GetStart(), "to", item.GetEnd())
