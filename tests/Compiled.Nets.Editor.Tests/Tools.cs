using System.Diagnostics;

namespace Compiled.Nets.Editor.Tests;

/// <summary>Paths and processes the editor tests share: the repository, the local csharp-ls, child dotnet runs.</summary>
internal static class Tools
{
    public const string CSharpLsVersion = "0.28.0";

    public static string RepoRoot { get; } = FindRepoRoot();

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// The test host runs inside `dotnet test`, whose MSBuild variables would point a child build or csharp-ls's
    /// MSBuildLocator at the parent's MSBuild instance; children start from the machine's own environment.
    /// </summary>
    public static ProcessStartInfo WithoutMSBuildHostVariables(this ProcessStartInfo psi)
    {
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            psi.Environment.Remove(key);
        return psi;
    }

    public static (int ExitCode, string Output) Run(string file, string arguments, string workingDirectory, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        }.WithoutMSBuildHostVariables();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {arguments} ran past {timeout.TotalSeconds} s");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>csharp-ls installed into a tool path under artifacts/ (a dotnet tool from NuGet; nothing global).</summary>
    public static string CSharpLs()
    {
        string dir = Path.Combine(RepoRoot, "artifacts", "tools", "csharp-ls-" + CSharpLsVersion);
        string exe = Path.Combine(dir, "csharp-ls");
        if (File.Exists(exe)) return exe;
        var (code, output) = Run("dotnet", $"tool install csharp-ls --version {CSharpLsVersion} --tool-path \"{dir}\"", RepoRoot, TimeSpan.FromMinutes(5));
        if (code != 0 || !File.Exists(exe)) throw new InvalidOperationException("installing csharp-ls failed:\n" + output);
        return exe;
    }

    /// <summary>
    /// A copy of the FashionMnist sample's network in a project of its own, referencing the runtime and the analyzer
    /// assemblies this test project was built with, with <paramref name="edit"/> applied to its source.
    /// </summary>
    public static string SampleCopy(Func<string, string> edit)
    {
        string dir = Path.Combine(Path.GetTempPath(), "cnet-editor-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        string bin = AppContext.BaseDirectory;
        File.WriteAllText(Path.Combine(dir, "Seed.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <Reference Include="{Path.Combine(bin, "Compiled.Nets.Runtime.dll")}" />
                <Reference Include="{Path.Combine(bin, "Compiled.Nets.Attributes.dll")}" />
                <Analyzer Include="{Path.Combine(bin, "Compiled.Nets.Generator.dll")}" />
                <Analyzer Include="{Path.Combine(bin, "Compiled.Nets.CodeFixes.dll")}" />
              </ItemGroup>
            </Project>
            """);
        string source = File.ReadAllText(Path.Combine(RepoRoot, "samples", "FashionMnist", "ConvNet.cs"));
        File.WriteAllText(Path.Combine(dir, "ConvNet.cs"), edit(source));
        return dir;
    }
}
