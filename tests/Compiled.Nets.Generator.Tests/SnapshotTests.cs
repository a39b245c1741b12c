using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// Generated source for the sample networks compared with checked-in files under Snapshots/. Run with
/// UPDATE_SNAPSHOTS=1 to rewrite them after an intended emitter change, then review the diff.
/// </summary>
public class SnapshotTests
{
    // Found from the test binary, not [CallerFilePath]: CI builds map source paths to /_/ (ContinuousIntegrationBuild).
    private static string Dir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Compiled.Nets.sln not found above " + AppContext.BaseDirectory),
            "tests", "Compiled.Nets.Generator.Tests");
    }

    public static TheoryData<string> Networks() => new()
    {
        "Compiled.Nets.Network.Tests.ConvNet.g.cs",
        "Compiled.Nets.Network.Tests.Mlp.g.cs",
        "Compiled.Nets.Network.Tests.BnNet.g.cs",
        "Compiled.Nets.Network.Tests.ResidualBlock.g.cs",
        "Compiled.Nets.Network.Tests.ResNet.g.cs",
        "Compiled.Nets.Network.Tests.TokenNet.g.cs",
        "Compiled.Nets.Network.Tests.SeqNet.g.cs",
        "Compiled.Nets.Network.Tests.SeqBlock.g.cs",
        "Compiled.Nets.Network.Tests.SeqRegressor.g.cs",
        "Compiled.Nets.Network.Tests.MiniBertLayer.g.cs",
        "Compiled.Nets.Network.Tests.PoolBiasNet.g.cs",
        "Compiled.Nets.Network.Tests.ActNet.g.cs",
        "Compiled.Nets.Network.Tests.GapNet.g.cs",
        "Compiled.Nets.Network.Tests.GateNet.g.cs",
        "Compiled.Nets.Network.Tests.ConvBlock.g.cs",
        "Compiled.Nets.Network.Tests.BlockNet.g.cs",
        "Compiled.Nets.Network.Tests.BranchNet.g.cs",
        "Compiled.Nets.Network.Tests.DownBlock.g.cs",
        "Compiled.Nets.Network.Tests.SmallResNet.g.cs",
        "Compiled.Nets.Network.Tests.Bn1dNet.g.cs",
        "Compiled.Nets.Network.Tests.LogSoftmaxNet.g.cs",
        "Compiled.Nets.Network.Tests.NllNet.g.cs",
        "Compiled.Nets.Network.Tests.LstmNet.g.cs",
        "Compiled.Nets.Network.Tests.GruNet.g.cs",
        "Compiled.Nets.Network.Tests.TwoInputNet.g.cs",
        "Compiled.Nets.Network.Tests.ScaleNet.g.cs",
        "Compiled.Nets.Network.Tests.HandAttentionNet.g.cs",
        "Compiled.Nets.Network.Tests.TwoHeadNet.g.cs",
        "Compiled.Nets.Network.Tests.SplitNet.g.cs",
        "Compiled.Nets.Network.Tests.QuantileNet.g.cs",
        "Compiled.Nets.Network.Tests.FocalNet.g.cs",
        "Compiled.Nets.Network.Tests.ReduceNet.g.cs",
        "Compiled.Nets.Network.Tests.TwoHeadClassMethodNet.g.cs",
        "Compiled.Nets.Network.Tests.AttentionPoolNet.g.cs",
        "Compiled.Nets.Network.Tests.DecoderNet.g.cs",
        "Compiled.Nets.Network.Tests.PairTwoHeadNet.g.cs",
    };

    // One generator run over the Network.Tests networks serves every case (the generator is deterministic, and a run —
    // the generator, then a compilation of all it writes — costs seconds): the same source that project compiles and
    // runs, so the snapshots show tested code.
    private static readonly Lazy<(ImmutableArray<Diagnostic> Generator, ImmutableArray<(string Hint, string Text)> Sources, ImmutableArray<Diagnostic> Output)> s_networks =
        new(() => GeneratorHarness.Run(File.ReadAllText(Path.Combine(Dir(), "..", "Compiled.Nets.Network.Tests", "Networks.cs"))));

    [Theory]
    [MemberData(nameof(Networks))]
    public void GeneratedSource_MatchesSnapshot(string hint)
    {
        var (diags, sources, output) = s_networks.Value;
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        var actual = sources.Single(s => s.Hint == hint).Text;
        var file = Path.Combine(Dir(), "Snapshots", hint);
        if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") == "1" || !File.Exists(file) && Environment.GetEnvironmentVariable("CI") is null)
        {
            File.WriteAllText(file, actual);
            return;
        }
        Assert.True(File.Exists(file), $"Missing snapshot {file}; run the tests once with UPDATE_SNAPSHOTS=1.");
        var expected = File.ReadAllText(file).Replace("\r\n", "\n");
        Assert.True(expected == actual, $"Generated {hint} differs from its snapshot; if intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff.\n{FirstDifference(expected, actual)}");
    }

    [Fact]
    public void Every_network_tests_network_compiles_beside_the_GPU_package_and_a_chain_too_long_for_one_kernel_says_so()
    {
        // The Distributed tests compile these networks beside Compiled.Nets.Gpu, so each twin must compile (ActNet's long
        // chain of activations is one kernel at ILGPU's most parameters); a chain longer still gets a twin whose
        // ToDevice names why, not code that does not compile.
        var input = File.ReadAllText(Path.Combine(Dir(), "..", "Compiled.Nets.Network.Tests", "Networks.cs"));
        var (diags, sources, output) = GeneratorHarness.Run(gpu: true, input);
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.DoesNotContain("has no kernels yet", sources.Single(s => s.Hint == "Compiled.Nets.Network.Tests.ActNet.Gpu.g.cs").Text, StringComparison.Ordinal);

        const string longChain = """
            using Compiled.Nets;
            namespace Demo;
            [Network, Input(8), CrossEntropyLoss]
            public partial class LongChain
            {
                [Linear(8, 8)] public partial Linear A { get; }
                [Linear(8, 2)] public partial Linear B { get; }
                Tensor Forward(Tensor x) => x.Apply(A).Elu().Silu().Hardswish().Elu().Silu().Hardswish().Elu().Silu().Hardswish().Apply(B);
            }
            """;
        var (longDiags, longSources, longOutput) = GeneratorHarness.Run(gpu: true, longChain);
        Assert.Empty(longDiags);
        Assert.Empty(longOutput.Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Contains("LongChain: the GPU backend has no kernels yet for a chain of 10 elementwise stages after one op (its fused kernel would take 17 parameters, ILGPU's at most 14)",
            longSources.Single(s => s.Hint == "Demo.LongChain.Gpu.g.cs").Text, StringComparison.Ordinal);
    }

    /// <summary>The device twin of the seed ConvNet, in a compilation that references Compiled.Nets.Gpu; none without it.</summary>
    [Fact]
    public void DeviceTwin_IsEmittedOnlyWhenTheCompilationReferencesTheGpuPackage()
    {
        var input = File.ReadAllText(Path.Combine(Dir(), "..", "Compiled.Nets.Gpu.Tests", "Networks.cs"));
        var (_, cpuOnly, _) = GeneratorHarness.Run(input);
        Assert.DoesNotContain(cpuOnly, s => s.Hint.EndsWith(".Gpu.g.cs", StringComparison.Ordinal) || s.Hint == "Compiled.Nets.Gpu.AssemblyInfo.g.cs");
        Assert.Contains(cpuOnly, s => s.Hint == "Compiled.Nets.Gpu.Tests.ConvNet.g.cs");

        var (diags, sources, output) = GeneratorHarness.Run(gpu: true, input);
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        Assert.Contains(sources, s => s.Hint == "Compiled.Nets.Gpu.AssemblyInfo.g.cs");
        // Every test network has a twin; one of two inputs without a loss takes its slots from the generated code.
        Assert.DoesNotContain(sources, s => s.Hint.EndsWith(".Gpu.g.cs", StringComparison.Ordinal) && s.Text.Contains("has no kernels yet", StringComparison.Ordinal));
        var twoInputs = sources.Single(s => s.Hint == "Compiled.Nets.Gpu.Tests.TwoInputFeatures.Gpu.g.cs").Text;
        Assert.Contains("base(device, net._store, \"TwoInputFeatures\", s_inputSlots, s_outputSlots)", twoInputs);
        Assert.Contains("public void Forward(global::System.ReadOnlySpan<float> a, global::System.ReadOnlySpan<float> b, int batch, global::System.Span<float> output)", twoInputs);
        // The seed ConvNet's twin and MiniBert's (a sequence network: sizes follow the batch's T).
        foreach (var hint in new[] { "Compiled.Nets.Gpu.Tests.ConvNet.Gpu.g.cs", "Compiled.Nets.Gpu.Tests.MiniBert.Gpu.g.cs" })
        {
            var actual = sources.Single(s => s.Hint == hint).Text;
            var file = Path.Combine(Dir(), "Snapshots", hint);
            if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") == "1" || !File.Exists(file) && Environment.GetEnvironmentVariable("CI") is null)
            {
                File.WriteAllText(file, actual);
                continue;
            }
            var expected = File.ReadAllText(file).Replace("\r\n", "\n");
            Assert.True(expected == actual, $"Generated {hint} differs from its snapshot; if intended, rerun with UPDATE_SNAPSHOTS=1 and review the diff.\n{FirstDifference(expected, actual)}");
        }
    }

    private static string FirstDifference(string a, string b)
    {
        var la = a.Split('\n'); var lb = b.Split('\n');
        for (int i = 0; i < Math.Max(la.Length, lb.Length); i++)
        {
            string x = i < la.Length ? la[i] : "<end>", y = i < lb.Length ? lb[i] : "<end>";
            if (x != y) return $"line {i + 1}:\n- {x}\n+ {y}";
        }
        return "";
    }
}
