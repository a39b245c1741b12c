using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// A consumer outside the solution that references only the freshly packed packages (a local folder source, its own
/// package cache, no ProjectReference), with nullable and warnings as errors: the seed bug fails to build with
/// CNET0001 at its argument and nothing else; the fixed network builds and trains 20 steps with the loss falling.
/// </summary>
public class PackageConsumerTests(ITestOutputHelper output)
{
    private const string Network = Compiled.Nets.Generator.Tests.SeedNetworks.CifarSeedBug;

    private const string Program = """
        using Compiled.Nets;
        using Compiled.Nets.Training;

        // 20 AdamW steps on a synthetic batch whose class shows in its pixels: the loss must fall.
        const int batch = 8;
        var x = new float[batch * 3 * 32 * 32];
        var y = new int[batch];
        var rng = new Random(1);
        for (int b = 0; b < batch; b++)
        {
            y[b] = b % 10;
            for (int i = 0; i < 3 * 32 * 32; i++) x[b * 3072 + i] = (float)rng.NextDouble() * 0.1f + (i % 10 == y[b] ? 1f : 0f);
        }
        using var net = new CifarNet(seed: 3);
        var opt = new AdamW(net.Parameters, 1e-3f);
        float first = 0, last = 0;
        for (int step = 0; step < 20; step++)
        {
            last = net.TrainStep(x, y, batch);
            if (step == 0) first = last;
            opt.Step();
        }
        Console.WriteLine($"loss {first:F4} -> {last:F4}");
        return last < 0.5f * first ? 0 : 1;
        """;

    [Fact]
    public void OnlyThePackages_GiveTheCompileTimeError_AndATrainingNetwork()
    {
        string root = Path.Combine(Path.GetTempPath(), "cnet-consumer-" + Guid.NewGuid().ToString("N")[..8]);
        string packages = Path.Combine(root, "packages"), app = Path.Combine(root, "app");
        Directory.CreateDirectory(app);
        try
        {
            foreach (var project in new[] { "src/Attributes/Compiled.Nets.Attributes.csproj", "src/Runtime/Compiled.Nets.Runtime.csproj" })
            {
                var (code, log) = Tools.Run("dotnet", $"pack \"{Path.Combine(Tools.RepoRoot, project)}\" -c Release --no-build -o \"{packages}\" -nologo", Tools.RepoRoot, TimeSpan.FromMinutes(5));
                Assert.True(code == 0, log);
            }
            File.WriteAllText(Path.Combine(root, "nuget.config"), $"""
                <configuration>
                  <packageSources>
                    <add key="local" value="{packages}" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="local"><package pattern="Compiled.Nets*" /></packageSource>
                    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                    <RestorePackagesPath>{Path.Combine(root, "cache")}</RestorePackagesPath>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Compiled.Nets" Version="0.1.0" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), Program);
            File.WriteAllText(Path.Combine(app, "CifarNet.cs"), Network);

            var (failed, buildLog) = Tools.Run("dotnet", "build -nologo -nodeReuse:false -p:UseSharedCompilation=false", app, TimeSpan.FromMinutes(5));
            var reported = Regex.Matches(buildLog, @"^\S+?(?<file>[^/\\]+\.cs)\((?<at>\d+,\d+)\): (?<sev>error|warning) (?<id>\w+):", RegexOptions.Multiline)
                .Select(m => $"{m.Groups["file"].Value}({m.Groups["at"].Value}) {m.Groups["sev"].Value} {m.Groups["id"].Value}").Distinct().ToList();
            Assert.NotEqual(0, failed);
            var at = Microsoft.CodeAnalysis.Text.SourceText.From(Network).Lines.GetLinePosition(Network.IndexOf("128 * 7 * 7", StringComparison.Ordinal));
            Assert.True(reported.SequenceEqual([$"CifarNet.cs({at.Line + 1},{at.Character + 1}) error CNET0001"]), string.Join("\n", reported) + "\n" + buildLog);

            File.WriteAllText(Path.Combine(app, "CifarNet.cs"), Network.Replace("128 * 7 * 7", "128 * 8 * 8"));
            var (ran, runLog) = Tools.Run("dotnet", "run -c Release -nologo -p:UseSharedCompilation=false", app, TimeSpan.FromMinutes(5));
            output.WriteLine(runLog.Trim().Split('\n')[^1]);
            Assert.True(ran == 0, runLog);
            Assert.Matches(@"loss \d+\.\d+ -> \d+\.\d+", runLog);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
