using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// A consumer outside the solution that references only the freshly packed packages (a local folder source, its own
/// package cache, no ProjectReference), with nullable and warnings as errors: the seed bug fails to build with
/// CNET0001 at its argument and nothing else; the fixed network builds and trains 20 steps with the loss falling; with
/// the GPU package too, it trains through its generated device twin.
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

    private const string GpuProgram = """
        using Compiled.Nets.Gpu;

        // The same network's generated device twin on ILGPU's CPU accelerator: three training steps.
        const int batch = 2;
        var x = new float[batch * 3 * 32 * 32];
        var y = new int[] { 1, 7 };
        for (int i = 0; i < x.Length; i++) x[i] = (i % 17) * 0.05f;
        using var device = GpuDevice.Open("cpu-accelerator");
        using var net = new CifarNet(seed: 3);
        using var twin = net.ToDevice(device);
        using var opt = new DeviceAdamW(twin, 1e-3f);
        float loss = 0;
        for (int step = 0; step < 3; step++) { loss = twin.TrainStep(x, y, batch); opt.Step(); }
        Console.WriteLine($"{device.Kind}: loss {loss:F4}, {twin.LaunchesPerTrainStep} launches per step");
        return float.IsFinite(loss) ? 0 : 1;
        """;

    [Fact]
    public void OnlyThePackages_GiveTheCompileTimeError_AndATrainingNetwork()
    {
        using var consumer = new Consumer(["src/Attributes/Compiled.Nets.Attributes.csproj", "src/Runtime/Compiled.Nets.Runtime.csproj"], ["Compiled.Nets"]);
        consumer.Write("Program.cs", Program);
        consumer.Write("CifarNet.cs", Network);

        var (failed, buildLog) = Tools.Run("dotnet", "build -nologo -nodeReuse:false -p:UseSharedCompilation=false", consumer.App, TimeSpan.FromMinutes(5));
        var reported = Regex.Matches(buildLog, @"^\S+?(?<file>[^/\\]+\.cs)\((?<at>\d+,\d+)\): (?<sev>error|warning) (?<id>\w+):", RegexOptions.Multiline)
            .Select(m => $"{m.Groups["file"].Value}({m.Groups["at"].Value}) {m.Groups["sev"].Value} {m.Groups["id"].Value}").Distinct().ToList();
        Assert.NotEqual(0, failed);
        var at = Microsoft.CodeAnalysis.Text.SourceText.From(Network).Lines.GetLinePosition(Network.IndexOf("128 * 7 * 7", StringComparison.Ordinal));
        Assert.True(reported.SequenceEqual([$"CifarNet.cs({at.Line + 1},{at.Character + 1}) error CNET0001"]), string.Join("\n", reported) + "\n" + buildLog);

        consumer.Write("CifarNet.cs", Network.Replace("128 * 7 * 7", "128 * 8 * 8"));
        var (ran, runLog) = Tools.Run("dotnet", "run -c Release -nologo -p:UseSharedCompilation=false", consumer.App, TimeSpan.FromMinutes(5));
        output.WriteLine(runLog.Trim().Split('\n')[^1]);
        Assert.True(ran == 0, runLog);
        Assert.Matches(@"loss \d+\.\d+ -> \d+\.\d+", runLog);
    }

    /// <summary>With the GPU package beside it, the same package's generator also emits the network's device twin.</summary>
    [Fact]
    public void WithTheGpuPackage_TheNetworkGetsItsDeviceTwin()
    {
        using var consumer = new Consumer(["src/Attributes/Compiled.Nets.Attributes.csproj", "src/Runtime/Compiled.Nets.Runtime.csproj", "src/Gpu/Compiled.Nets.Gpu.csproj"],
            ["Compiled.Nets", "Compiled.Nets.Gpu"]);
        consumer.Write("Program.cs", GpuProgram);
        consumer.Write("CifarNet.cs", Network.Replace("128 * 7 * 7", "128 * 8 * 8"));
        var (ran, runLog) = Tools.Run("dotnet", "run -c Release -nologo -p:UseSharedCompilation=false", consumer.App, TimeSpan.FromMinutes(5));
        output.WriteLine(runLog.Trim().Split('\n')[^1]);
        Assert.True(ran == 0, runLog);
        Assert.Matches(@"cpu-accelerator: loss \d+\.\d+, 26 launches per step", runLog); // each pool reads its convolution's GEMM output, applies the ReLU and routes the gradient back
    }

    /// <summary>A throw-away project outside the solution, restoring only from a folder of freshly packed packages (its
    /// own package cache), with nullable and warnings as errors.</summary>
    private sealed class Consumer : IDisposable
    {
        private readonly string _root = Path.Combine(Path.GetTempPath(), "cnet-consumer-" + Guid.NewGuid().ToString("N")[..8]);

        public Consumer(string[] projects, string[] references)
        {
            string packages = Path.Combine(_root, "packages");
            App = Path.Combine(_root, "app");
            Directory.CreateDirectory(App);
            foreach (var project in projects)
            {
                var (code, log) = Tools.Run("dotnet", $"pack \"{Path.Combine(Tools.RepoRoot, project)}\" -c Release --no-build -o \"{packages}\" -nologo", Tools.RepoRoot, TimeSpan.FromMinutes(5));
                Assert.True(code == 0, log);
            }
            File.WriteAllText(Path.Combine(_root, "nuget.config"), $"""
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
            string items = string.Join("\n    ", references.Select(r => $"<PackageReference Include=\"{r}\" Version=\"0.1.0\" />"));
            File.WriteAllText(Path.Combine(App, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                    <RestorePackagesPath>{Path.Combine(_root, "cache")}</RestorePackagesPath>
                  </PropertyGroup>
                  <ItemGroup>
                    {items}
                  </ItemGroup>
                </Project>
                """);
        }

        public string App { get; }

        public void Write(string file, string text) => File.WriteAllText(Path.Combine(App, file), text);

        public void Dispose() => Directory.Delete(_root, recursive: true);
    }
}
