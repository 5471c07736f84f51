# Installs TextToVideo.ofx.bundle on Windows:
#
#   powershell -ExecutionPolicy Bypass -File installers\windows\install.ps1 [-Prefix DIR | -User] [-Bundle PATH]
#
# Copies the whole bundle folder into DIR (default: C:\Program Files\Common Files\OFX\Plugins,
# searched by every OFX host; needs an elevated "Run as administrator" PowerShell). -User
# installs into %LOCALAPPDATA%\OFX\Plugins instead and adds that folder to the user's
# OFX_PLUGIN_PATH. -Bundle defaults to a TextToVideo.ofx.bundle next to this script, else
# target\bundles\TextToVideo.ofx.bundle (built by installers\windows\build.ps1). Running it
# again replaces an earlier install. Never touches the network.
param(
    [string]$Prefix = "",
    [switch]$User,
    [string]$Bundle = ""
)
$ErrorActionPreference = "Stop"
$BundleName = "TextToVideo.ofx.bundle"
$SystemPrefix = Join-Path $env:CommonProgramFiles "OFX\Plugins"

if ($Prefix -ne "" -and $User) { throw "install.ps1: use either -Prefix or -User, not both" }
if ($User) { $Prefix = Join-Path $env:LOCALAPPDATA "OFX\Plugins" }
elseif ($Prefix -eq "") { $Prefix = $SystemPrefix }

if ($Bundle -eq "") {
    $Candidates = @(
        (Join-Path $PSScriptRoot $BundleName),
        (Join-Path $PSScriptRoot "..\$BundleName"),
        (Join-Path $PSScriptRoot "..\..\target\bundles\$BundleName")
    )
    foreach ($Candidate in $Candidates) {
        if (Test-Path -PathType Container $Candidate) { $Bundle = $Candidate; break }
    }
    if ($Bundle -eq "") {
        throw "install.ps1: no $BundleName found next to this script or in target\bundles; build it with installers\windows\build.ps1, or pass -Bundle PATH"
    }
}
if (-not (Test-Path -PathType Container $Bundle)) { throw "install.ps1: $Bundle is not a folder" }
$Bundle = (Resolve-Path $Bundle).Path
if ((Split-Path -Leaf $Bundle) -ne $BundleName) { throw "install.ps1: $Bundle is not named $BundleName" }
if (-not (Test-Path -PathType Leaf (Join-Path $Bundle "Contents\Win64\TextToVideo.ofx"))) {
    throw "install.ps1: $Bundle has no Contents\Win64\TextToVideo.ofx: it was not built for Windows (run build.ps1 on this machine)"
}

try {
    New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
} catch {
    throw "install.ps1: cannot create $Prefix; run PowerShell as administrator, or install for yourself only with -User"
}
$Dest = Join-Path $Prefix $BundleName
# Copy next to the destination, then swap, so that a host starting meanwhile never sees a
# half-copied bundle.
$Tmp = Join-Path $Prefix ".$BundleName.installing"
if (Test-Path $Tmp) { Remove-Item -Recurse -Force $Tmp }
try {
    Copy-Item -Recurse $Bundle $Tmp
} catch {
    if (Test-Path $Tmp) { Remove-Item -Recurse -Force $Tmp }
    throw "install.ps1: cannot copy into ${Prefix}: run PowerShell as administrator, or use -User ($_)"
}
$Replaced = Test-Path $Dest
if ($Replaced) { Remove-Item -Recurse -Force $Dest }
Move-Item $Tmp $Dest

if ($Replaced) { Write-Output "install.ps1: replaced the earlier install: $Dest" }
else { Write-Output "install.ps1: installed $Dest" }
if (Test-Path (Join-Path $Dest "Contents\Resources\demo-model")) {
    Write-Output "install.ps1: the bundle includes the demo model (used while Model Path is empty)"
}
if ($User) {
    $Current = [Environment]::GetEnvironmentVariable("OFX_PLUGIN_PATH", "User")
    $Entries = @()
    if ($Current) { $Entries = $Current.Split(";") }
    if ($Entries -notcontains $Prefix) {
        $NewValue = (@($Prefix) + $Entries) -join ";"
        [Environment]::SetEnvironmentVariable("OFX_PLUGIN_PATH", $NewValue, "User")
        Write-Output "install.ps1: added $Prefix to your OFX_PLUGIN_PATH (new programs see it; log out and in for every program)"
    }
} elseif ($Prefix -ne $SystemPrefix) {
    Write-Output "install.ps1: $Prefix is not the default OFX folder: add it to OFX_PLUGIN_PATH (System > Environment Variables) before starting the host"
}
Write-Output "install.ps1: restart the host; the node appears as AI > Text to Video (Resolve: Effects > OpenFX generators; enable OFX plugins in Preferences)"
