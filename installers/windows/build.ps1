# Builds TextToVideo.ofx.bundle on Windows (64-bit):
#
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Out DIR] [-Cuda] [-WithCudaLibs]
#
# gives DIR\TextToVideo.ofx.bundle\Contents\Win64\TextToVideo.ofx (the plugin DLL, renamed) and
# Contents\Resources\ (the icon and the demo model). DIR defaults to target\bundles. Honours
# CARGO_TARGET_DIR. Install it with installers\windows\install.ps1.
#
# TextToVideo.ofx is always the CPU build, which loads on any machine. -Cuda also builds the
# node with CUDA support (needs the CUDA 13 toolkit) into Contents\Win64\TextToVideo-cuda.dll;
# where an NVIDIA driver is present, TextToVideo.ofx hands the host over to it
# (plugin\src\engine.rs), else the node runs on the CPU and says why. -WithCudaLibs also copies
# the CUDA runtime DLLs the engine needs (cudart, cublas, cublasLt, curand) from the toolkit
# (%CUDA_PATH%\bin\x64, or bin for older layouts) beside it: CUDA 13 does not put them on PATH.
param(
    [string]$Out = "",
    [switch]$Cuda,
    [switch]$WithCudaLibs
)
$ErrorActionPreference = "Stop"

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
if ($Out -eq "") { $Out = Join-Path $Root "target\bundles" }
$BuildCuda = $Cuda -or $WithCudaLibs
$Manifest = Join-Path $Root "Cargo.toml"

$Target = $env:CARGO_TARGET_DIR
if (-not $Target) { $Target = Join-Path $Root "target" }

& cargo build --release -p t2v-ofx-plugin --manifest-path $Manifest
if ($LASTEXITCODE -ne 0) { throw "cargo build failed (exit code $LASTEXITCODE)" }
$Dll = Join-Path $Target "release\text_to_video.dll"
if (-not (Test-Path $Dll)) { throw "cargo did not produce $Dll" }

$Bundle = Join-Path $Out "TextToVideo.ofx.bundle"
$BinDir = Join-Path $Bundle "Contents\Win64"
$Resources = Join-Path $Bundle "Contents\Resources"
New-Item -ItemType Directory -Force -Path $BinDir | Out-Null
New-Item -ItemType Directory -Force -Path $Resources | Out-Null

# Copies $From to $To through a temporary name, so that a host never loads half a file.
function Copy-Whole([string]$From, [string]$To) {
    $Tmp = Join-Path (Split-Path $To) ("." + (Split-Path $To -Leaf) + ".tmp")
    Copy-Item -Force $From $Tmp
    Move-Item -Force $Tmp $To
}

Copy-Whole $Dll (Join-Path $BinDir "TextToVideo.ofx")

$Engine = Join-Path $BinDir "TextToVideo-cuda.dll"
$CudaDlls = @("cudart64_13.dll", "cublas64_13.dll", "cublasLt64_13.dll", "curand64_10.dll")
foreach ($Name in $CudaDlls) {
    $Old = Join-Path $BinDir $Name
    if (Test-Path $Old) { Remove-Item -Force $Old }
}
if ($BuildCuda) {
    $CudaTarget = Join-Path $Target "cuda"
    & cargo build --release -p t2v-ofx-plugin --features cuda --target-dir $CudaTarget --manifest-path $Manifest
    if ($LASTEXITCODE -ne 0) { throw "cargo build --features cuda failed (exit code $LASTEXITCODE)" }
    $CudaDll = Join-Path $CudaTarget "release\text_to_video.dll"
    if (-not (Test-Path $CudaDll)) { throw "cargo did not produce $CudaDll" }
    Copy-Whole $CudaDll $Engine
    if ($WithCudaLibs) {
        if (-not $env:CUDA_PATH) { throw "-WithCudaLibs: set CUDA_PATH to the CUDA 13 toolkit" }
        $Dirs = @((Join-Path $env:CUDA_PATH "bin\x64"), (Join-Path $env:CUDA_PATH "bin"))
        foreach ($Name in $CudaDlls) {
            $Found = $Dirs | ForEach-Object { Join-Path $_ $Name } | Where-Object { Test-Path $_ } | Select-Object -First 1
            if (-not $Found) { throw "-WithCudaLibs: $Name is in neither $($Dirs -join ' nor ')" }
            Copy-Whole $Found (Join-Path $BinDir $Name)
        }
    }
} elseif (Test-Path $Engine) {
    Remove-Item -Force $Engine
}

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
