#!/usr/bin/env pwsh
# MTL-MOE build entry point (PowerShell 7: `dotnet tool restore` then `dotnet pwsh ./build.ps1 <target>`).
#   build       Release build of the solution
#   test        CPU test suite (extra arguments go to `dotnet test`, e.g. --filter "TestCategory=Cuda")
#   bench       run a benchmark workload (extra arguments go to tools/Bench, e.g. gemm --device cuda)
#   gpu-bundle  artifacts/gpu-bundle/: tests as an executable, bench, train, a .NET runtime tar.xz and run-gpu.sh, for a
#               Linux GPU machine that has only the NVIDIA driver and CUDA libraries (no SDK); see README.
param(
    [Parameter(Position = 0)][ValidateSet('build', 'test', 'bench', 'gpu-bundle')][string]$Target = 'build',
    [Parameter(ValueFromRemainingArguments)][string[]]$Rest = @()
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot

function Invoke-Native([string]$exe, [string[]]$arguments) {
    Write-Host "> $exe $($arguments -join ' ')"
    & $exe @arguments
    if ($LASTEXITCODE -ne 0) { throw "$exe exited with $LASTEXITCODE" }
}

function Build-GpuBundle {
    $out = Join-Path $root 'artifacts/gpu-bundle'
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    New-Item -ItemType Directory -Force $out | Out-Null
    $common = @('-c', 'Release', '-p:SatelliteResourceLanguages=en', '-p:DebugType=portable')

    # Tests as an executable on NUnit's Microsoft.Testing.Platform runner (GpuBundle switches it on in the csproj).
    # It compiles into its own intermediate folder (obj/gpu-bundle/), so the VSTest build of `dotnet test` is untouched.
    Invoke-Native dotnet (@('build', "$root/tests/MtlMoe.Engine.Tests", '-p:GpuBundle=true', '-o', "$out/tests") + $common)
    Invoke-Native dotnet (@('publish', "$root/tools/Bench", '--no-self-contained', '-o', "$out/bench") + $common)
    Invoke-Native dotnet (@('publish', "$root/tools/Train", '-r', 'linux-x64', '--no-self-contained', '-o', "$out/train") + $common)

    # The .NET runtime the apps were built for: dotnet host, host/fxr and shared/Microsoft.NETCore.App/<version>.
    $dotnetRoot = Split-Path -Parent (Get-Command dotnet).Source
    $resolved = (Get-Item (Get-Command dotnet).Source).ResolvedTarget
    if ($resolved) { $dotnetRoot = Split-Path -Parent $resolved }
    $tfm = [version]'10.0'
    $runtime = Get-ChildItem "$dotnetRoot/shared/Microsoft.NETCore.App" -Directory |
        Where-Object { $_.Name -match '^\d+\.\d+\.\d+$' -and ([version]$_.Name).Major -eq $tfm.Major } |
        Sort-Object { [version]$_.Name } | Select-Object -Last 1
    if (-not $runtime) { throw "no Microsoft.NETCore.App $($tfm.Major).x runtime under $dotnetRoot/shared" }
    $items = @('dotnet', 'host', "shared/Microsoft.NETCore.App/$($runtime.Name)")
    foreach ($extra in 'LICENSE.txt', 'ThirdPartyNotices.txt') { if (Test-Path "$dotnetRoot/$extra") { $items += $extra } }
    $env:XZ_OPT = '-6 -T0'
    Invoke-Native tar (@('-C', $dotnetRoot, '-cJf', "$out/dotnet-runtime.tar.xz") + $items)
    Set-Content -Path "$out/RUNTIME_VERSION" -Value $runtime.Name

    Copy-Item "$root/tools/gpu-bundle/run-gpu.sh" "$out/run-gpu.sh"
    if (-not $IsWindows) { Invoke-Native chmod @('+x', "$out/run-gpu.sh") }

    $bytes = (Get-ChildItem -Recurse -File $out | Measure-Object -Sum Length).Sum
    $mb = [math]::Round($bytes / 1MB, 1)
    Write-Host "gpu-bundle: $out ($mb MB, runtime $($runtime.Name))"
    if ($bytes -gt 60MB) { throw "gpu-bundle is $mb MB, over the 60 MB budget" }
}

Push-Location $root
try {
    switch ($Target) {
        'build' { Invoke-Native dotnet (@('build', 'MtlMoe.Engine.sln', '-c', 'Release') + $Rest) }
        'test' { Invoke-Native dotnet (@('test', 'MtlMoe.Engine.sln', '-c', 'Release') + $Rest) }
        'bench' { Invoke-Native dotnet (@('run', '-c', 'Release', '--project', 'tools/Bench', '--') + $Rest) }
        'gpu-bundle' { Build-GpuBundle }
    }
}
finally { Pop-Location }
