"""Drives NatronRenderer for host-tests/tests/natron_host.rs: `NatronRenderer -t driver.py`.

The job is the JSON file named by $T2V_NATRON_JOB. Its "mode" is
  "params": create the node, read and set every parameter the job names, choices by index
            and by label, and report what Natron holds;
  "graph":  build nodes and writers, report regions of definition, then render each writer
            (a failed render is reported and the next one still runs) and/or save the project.
The report (JSON) is written to job["report"] before the script quits: NatronRenderer 2.5 crashes
in its own Python shutdown after renders, so the test judges the report, the frames and the logs,
never the exit code.
"""

import json
import os
import traceback

import NatronEngine


def labels(param):
    return [param.getOption(i) for i in range(param.getNumOptions())]


def value(param):
    if type(param).__name__ == "ButtonParam":
        return None
    return param.getValue()


def set_value(param, v):
    """Choices take an index, or a label (looked up here, so that a wrong label fails loudly);
    colours and 2D values take a list, one value per dimension."""
    kind = type(param).__name__
    if isinstance(v, list):
        for dim, x in enumerate(v):
            param.setValue(x, dim)
    elif kind == "ChoiceParam":
        if isinstance(v, str):
            options = labels(param)
            if v not in options:
                raise ValueError("%s: no option %r in %s" % (param.getScriptName(), v, options))
            v = options.index(v)
        param.setValue(int(v))
    elif kind == "BooleanParam":
        param.setValue(bool(v))
    elif kind.startswith("Int"):
        param.setValue(int(v))
    elif kind.startswith("Double"):
        param.setValue(float(v))
    else:
        param.setValue(str(v))


def create(plugin):
    node = app.createNode(plugin)  # noqa: F821  (app is NatronRenderer's)
    if node is None:
        raise RuntimeError("NatronRenderer did not load %s (check OFX_PLUGIN_PATH)" % plugin)
    return node


def params_mode(job, report):
    ids = NatronEngine.natron.getPluginIDs()
    report["plugin_listed"] = job["plugin"] in ids
    node = create(job["plugin"])
    report["plugin_id"] = node.getPluginID()
    report["label"] = node.getLabel()
    report["inputs"] = [node.getInputLabel(i) for i in range(node.getMaxInputCount())]
    out = report["params"] = {}
    # Every default first: setting one parameter may move another (picking a `style` sets
    # `style_name`).
    for entry in job["params"]:
        param = node.getParam(entry["name"])
        out[entry["name"]] = None if param is None else {
            "type": type(param).__name__, "default": value(param)}
    for entry in job["params"]:
        name = entry["name"]
        param = node.getParam(name)
        if param is None:
            continue
        seen = out[name]
        if type(param).__name__ == "ChoiceParam":
            seen["options"] = labels(param)
            by_index, by_label = [], []
            for i, label in enumerate(entry.get("labels", [])):
                param.setValue(i)
                by_index.append(param.getValue())
                param.setValue(0 if i else 1)
                param.set(label)  # Natron's own lookup by label
                by_label.append(param.getValue())
            seen["by_index"], seen["by_label"] = by_index, by_label
        if "set" in entry:
            set_value(param, entry["set"])
            seen["after_set"] = value(param)


def graph_mode(job, report):
    if job.get("format"):
        w, h = job["format"]
        app.addFormat("T2VTest %dx%d 1" % (w, h))  # noqa: F821
        fmt = app.getProjectParam("outputFormat")  # noqa: F821
        fmt.setValue(labels(fmt).index("T2VTest"))
    nodes = {}
    for spec in job["nodes"]:
        node = nodes[spec["name"]] = create(spec["plugin"])
        for name, v in spec.get("params", {}).items():
            param = node.getParam(name)
            if param is None:
                raise KeyError("%s has no parameter %r" % (spec["plugin"], name))
            set_value(param, v)
        for index, source in spec.get("inputs", {}).items():
            if not node.connectInput(int(index), nodes[source]):
                raise RuntimeError("could not connect %s to input %s of %s" % (source, index, spec["name"]))
    writers = []
    for spec in job.get("writers", []):
        writer = create(spec["plugin"])
        writer.setScriptName(spec["name"])
        writer.connectInput(0, nodes[spec["input"]])
        set_value(writer.getParam("filename"), spec["filename"])
        set_value(writer.getParam("formatType"), "project" if job.get("format") else "input")
        for name, v in spec.get("params", {}).items():
            set_value(writer.getParam(name), v)
        writers.append((spec, writer))
    report["rods"] = []
    for name, time in job.get("rods", []):
        rod = nodes[name].getRegionOfDefinition(time, 0)
        report["rods"].append([name, time, [rod.x1, rod.y1, rod.x2, rod.y2]])
    if job.get("save"):
        report["saved"] = bool(app.saveProjectAs(job["save"]))  # noqa: F821
    report["renders"] = []
    for spec, writer in writers if job.get("render", True) else []:
        try:
            app.render(writer, spec["first"], spec["last"])  # noqa: F821  (blocking here)
            report["renders"].append([spec["name"], "ok"])
        except Exception as e:
            report["renders"].append([spec["name"], "failed: %s" % e])


def main():
    with open(os.environ["T2V_NATRON_JOB"]) as f:
        job = json.load(f)
    report = {}
    try:
        {"params": params_mode, "graph": graph_mode}[job["mode"]](job, report)
        report["done"] = True
    except Exception:
        report["error"] = traceback.format_exc()
    with open(job["report"], "w") as f:
        json.dump(report, f, indent=1)
    print("[driver] report written: %s" % job["report"], flush=True)


main()
quit()  # noqa: F821  (NatronRenderer's)
