using System.Globalization;
using System.Text;
using Compiled.Nets.Serialization;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// [Weights]: the build reads the weights file's header (never its data) and reports at the attribute what does not
/// fit the network — missing tensors, other shapes or dtypes, unused tensors, an unreadable or absent file — with
/// [StateName] mappings applied; LoadWeights is generated with the file's resolved path.
/// </summary>
public sealed class WeightsContractTests : IDisposable
{
    private const string Usings = "using Compiled.Nets;\n";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cnet-weights-" + Guid.NewGuid().ToString("N"));

    public WeightsContractTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Message(Diagnostic d) => d.GetMessage(CultureInfo.InvariantCulture);

    private string File(string name, params (string Name, int[] Shape)[] tensors)
    {
        string path = Path.Combine(_dir, name);
        SafeTensorsFile.Write(path, tensors.Select(t => SafeTensor.FromFloats(t.Name, t.Shape, new float[t.Shape.Aggregate(1, (a, b) => a * b)])));
        return path;
    }

    /// <summary>A header written by hand (dtypes the runtime's writer does not produce), zero data of the right size.</summary>
    private string RawFile(string name, string headerJson, int dataBytes)
    {
        string path = Path.Combine(_dir, name);
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var f = System.IO.File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)header.Length));
        f.Write(header);
        f.Write(new byte[dataBytes]);
        return path;
    }

    private static string Net(string attribute, string name = "N") => Usings + $$"""
        [Network, Input(4), MSELoss, {{attribute}}]
        public partial class {{name}}
        {
            [Linear(4, 3)] public partial Linear Fc1 { get; }
            [Linear(3, 2), StateName("head.out")] public partial Linear Fc2 { get; }
            Tensor Forward(Tensor x) => x.Apply(Fc1).Relu().Apply(Fc2);
        }
        """;

    private static readonly (string, int[])[] Fitting = [("fc1.weight", [3, 4]), ("fc1.bias", [3]), ("head.out.weight", [2, 3]), ("head.out.bias", [2])];

    [Fact]
    public void AFileThatFits_IsQuiet_AndLoadWeightsUsesItsPath()
    {
        string path = File("model.safetensors", Fitting);
        var (diags, sources, output) = GeneratorHarness.RunWithFiles([path], Net("Weights(\"model.safetensors\")"));
        Assert.Empty(diags);
        Assert.Empty(output.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        var weights = sources.Single(s => s.Hint == "N.Weights.g.cs").Text;
        Assert.Contains($"public const string WeightsFile = \"{path}\";", weights);
        Assert.Contains("public void LoadWeights(string? path = null)", weights);
    }

    [Fact]
    public void MissingTensors_OtherShapes_AndUnusedOnes_AreReportedAtTheAttribute()
    {
        string path = File("model.safetensors", ("fc1.weight", [3, 5]), ("fc1.bias", [3]), ("head.out.weight", [2, 3]), ("cls.predictions.bias", [30522]));
        var (d, _, output) = GeneratorHarness.RunWithFiles([path], Net("Weights(\"model.safetensors\")"));
        Assert.Equal(["CNET0023", "CNET0024", "CNET0025"], d.Select(x => x.Id).Order());
        // All three at the attribute: where the marked one of the same source is.
        var (_, expected) = GeneratorHarness.Markup(Net("{|CNET0023:Weights(\"model.safetensors\")|}"));
        Assert.All(d, x => Assert.Equal((expected[0].Line, expected[0].Column, expected[0].Length),
            (x.Location.GetLineSpan().StartLinePosition.Line + 1, x.Location.GetLineSpan().StartLinePosition.Character + 1, x.Location.SourceSpan.Length)));
        Assert.Empty(output.Where(x => x.Severity == DiagnosticSeverity.Error));
        Assert.Equal("'model.safetensors' has no tensor for 1 of the 4 tensors N expects: head.out.bias", Message(d.Single(x => x.Id == "CNET0023")));
        Assert.Equal("'model.safetensors' holds 'fc1.weight' as F32 [3, 5], but N expects F32 [3, 4]", Message(d.Single(x => x.Id == "CNET0024")));
        var unused = d.Single(x => x.Id == "CNET0025");
        Assert.Equal(DiagnosticSeverity.Warning, unused.Severity);
        Assert.Equal("'model.safetensors' has 1 tensors N does not use (LoadWeights skips them): cls.predictions.bias", Message(unused));
    }

    [Fact]
    public void Dtypes_HalfWidthFloatsLoad_IntegersOnlyIntoBuffers()
    {
        // F16 and BF16 weights convert; an I64 weight does not (an int64 num_batches_tracked buffer would).
        string header = """{"fc1.weight":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,24]},"fc1.bias":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},"head.out.weight":{"dtype":"I64","shape":[2,3],"data_offsets":[30,78]},"head.out.bias":{"dtype":"F32","shape":[2],"data_offsets":[78,86]},"__metadata__":{"format":"pt"}}""";
        string path = RawFile("mixed.safetensors", header, 86);
        var d = GeneratorHarness.AssertDiagnosticsWithFiles([path], Net("{|CNET0024:Weights(\"mixed.safetensors\")|}"));
        Assert.Equal("'mixed.safetensors' holds 'head.out.weight' as I64 [2, 3], but N expects F32 [2, 3]", Message(d.Single()));
    }

    [Fact]
    public void AShardedHuggingFaceIndex_IsCheckedAcrossItsShards()
    {
        File("model-00001-of-00002.safetensors", ("fc1.weight", [3, 4]), ("fc1.bias", [3]));
        File("model-00002-of-00002.safetensors", ("head.out.weight", [2, 3]), ("head.out.bias", [2]));
        string index = Path.Combine(_dir, "model.safetensors.index.json");
        System.IO.File.WriteAllText(index, """
            {"metadata": {"total_size": 104}, "weight_map": {"fc1.weight": "model-00001-of-00002.safetensors", "fc1.bias": "model-00001-of-00002.safetensors",
             "head.out.weight": "model-00002-of-00002.safetensors", "head.out.bias": "model-00002-of-00002.safetensors"}}
            """);
        GeneratorHarness.AssertDiagnosticsWithFiles([index], Net("Weights(\"model.safetensors.index.json\")"));
        System.IO.File.Delete(Path.Combine(_dir, "model-00002-of-00002.safetensors"));
        var d = GeneratorHarness.AssertDiagnosticsWithFiles([index], Net("{|CNET0022:Weights(\"model.safetensors.index.json\")|}"));
        Assert.Contains("shard 'model-00002-of-00002.safetensors'", Message(d.Single()));
    }

    [Fact]
    public void AFileThatIsNotAnItem_OrNotSafetensors_IsCNET0022()
    {
        var d = GeneratorHarness.AssertDiagnosticsWithFiles([], Net("{|CNET0022:Weights(\"models/absent.safetensors\")|}"));
        Assert.Equal("[Weights(\"models/absent.safetensors\")]: it is not an AdditionalFiles item of this project: add <AdditionalFiles Include=\"models/absent.safetensors\" /> to the project file", Message(d.Single()));
        // A header length far beyond the file (a pickle, a truncated download): named, never allocated.
        string bad = Path.Combine(_dir, "bad.safetensors");
        System.IO.File.WriteAllBytes(bad, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3]);
        d = GeneratorHarness.AssertDiagnosticsWithFiles([bad], Net("{|CNET0022:Weights(\"bad.safetensors\")|}"));
        Assert.Contains("does not fit the file (11 bytes): not a safetensors file", Message(d.Single()));
        string notJson = RawFile("notjson.safetensors", "{\"fc1.weight\": {\"dtype\": \"F32\", \"shape\": [3, 4}", 0);
        d = GeneratorHarness.AssertDiagnosticsWithFiles([notJson], Net("{|CNET0022:Weights(\"notjson.safetensors\")|}"));
        Assert.Contains("its header is not valid JSON", Message(d.Single()));
    }
}
