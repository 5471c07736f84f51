# Removes TextToVideo.ofx.bundle on Windows:
#
#   powershell -ExecutionPolicy Bypass -File installers\windows\uninstall.ps1 [-Prefix DIR | -User]
#
# with the same DIR as the install (default: C:\Program Files\Common Files\OFX\Plugins; -User:
# %LOCALAPPDATA%\OFX\Plugins, also removed from the user's OFX_PLUGIN_PATH). The clip cache and
# the plugin log stay. Running it when nothing is installed is not an error.
param(
    [string]$Prefix = "",
    [switch]$User
)
$ErrorActionPreference = "Stop"
$BundleName = "TextToVideo.ofx.bundle"

if ($Prefix -ne "" -and $User) { throw "uninstall.ps1: use either -Prefix or -User, not both" }
if ($User) { $Prefix = Join-Path $env:LOCALAPPDATA "OFX\Plugins" }
elseif ($Prefix -eq "") { $Prefix = Join-Path $env:CommonProgramFiles "OFX\Plugins" }

$Dest = Join-Path $Prefix $BundleName
$Tmp = Join-Path $Prefix ".$BundleName.installing"
if (Test-Path $Tmp) { Remove-Item -Recurse -Force $Tmp }
if (-not (Test-Path $Dest)) {
    Write-Output "uninstall.ps1: nothing to remove: $Dest is not there"
} else {
    if (-not (Test-Path -PathType Container (Join-Path $Dest "Contents"))) {
        throw "uninstall.ps1: $Dest does not look like an OFX bundle (no Contents); not removing it"
    }
    try {
        Remove-Item -Recurse -Force $Dest
    } catch {
        throw "uninstall.ps1: cannot remove ${Dest}: close the host, run PowerShell as administrator, or pass the -Prefix / -User it was installed with ($_)"
    }
    Write-Output "uninstall.ps1: removed $Dest"
}
if ($User) {
    $Current = [Environment]::GetEnvironmentVariable("OFX_PLUGIN_PATH", "User")
    if ($Current) {
        $Kept = @($Current.Split(";") | Where-Object { $_ -ne "" -and $_ -ne $Prefix })
        if ($Kept.Count -eq 0) {
            [Environment]::SetEnvironmentVariable("OFX_PLUGIN_PATH", $null, "User")
        } else {
            [Environment]::SetEnvironmentVariable("OFX_PLUGIN_PATH", ($Kept -join ";"), "User")
        }
    }
}
Write-Output "uninstall.ps1: the clip cache and plugin log were left in place (see docs\troubleshooting.md)"
