# Builds TextToVideo.ofx.bundle on Windows (64-bit):
#
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Out DIR] [-Cuda]
#
# gives DIR\TextToVideo.ofx.bundle\Contents\Win64\TextToVideo.ofx (the plugin DLL, renamed) and
# Contents\Resources\ (the icon and, once trained, the demo model). DIR defaults to
# target\bundles. -Cuda builds with CUDA support (needs the CUDA toolkit). Honours
# CARGO_TARGET_DIR. Install it with installers\windows\install.ps1.
param(
    [string]$Out = "",
    [switch]$Cuda
)
$ErrorActionPreference = "Stop"

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
if ($Out -eq "") { $Out = Join-Path $Root "target\bundles" }

$CargoArgs = @("build", "--release", "-p", "t2v-ofx-plugin", "--manifest-path", (Join-Path $Root "Cargo.toml"))
if ($Cuda) { $CargoArgs += @("--features", "cuda") }
& cargo @CargoArgs
if ($LASTEXITCODE -ne 0) { throw "cargo build failed (exit code $LASTEXITCODE)" }

$Target = $env:CARGO_TARGET_DIR
if (-not $Target) { $Target = Join-Path $Root "target" }
$Dll = Join-Path $Target "release\text_to_video.dll"
if (-not (Test-Path $Dll)) { throw "cargo did not produce $Dll" }

$Bundle = Join-Path $Out "TextToVideo.ofx.bundle"
$BinDir = Join-Path $Bundle "Contents\Win64"
$Resources = Join-Path $Bundle "Contents\Resources"
New-Item -ItemType Directory -Force -Path $BinDir | Out-Null
New-Item -ItemType Directory -Force -Path $Resources | Out-Null
# Copy then rename, so that a host never loads half a file.
$Tmp = Join-Path $BinDir ".TextToVideo.ofx.tmp"
Copy-Item -Force $Dll $Tmp
Move-Item -Force $Tmp (Join-Path $BinDir "TextToVideo.ofx")
Copy-Item -Force (Join-Path $Root "plugin\resources\org.texttovideo.TextToVideo.png") $Resources

$Demo = Join-Path $Root "demo\model"
if (Test-Path (Join-Path $Demo "model_index.json")) {
    $DemoDest = Join-Path $Resources "demo-model"
    if (Test-Path $DemoDest) { Remove-Item -Recurse -Force $DemoDest }
    Copy-Item -Recurse $Demo $DemoDest
} else {
    Write-Warning "$Demo has no trained demo model; the bundle has no default model"
}
Write-Output $Bundle
