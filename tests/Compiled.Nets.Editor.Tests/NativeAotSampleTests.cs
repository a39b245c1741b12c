using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// The lean-binary path end to end: the FashionMnist sample trains a model, samples/Inference is published as a
/// NativeAOT binary (trim and AOT warnings are errors in this repository, so a warning fails the publish), and the
/// binary classifies the shipped test images exactly as the JIT build of the same program does.
/// </summary>
public class NativeAotSampleTests(ITestOutputHelper output)
{
    [Fact]
    public void TheAotBinary_ClassifiesLikeTheJitBuild()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return; // the publish below targets linux-x64
        string root = Path.Combine(Path.GetTempPath(), "cnet-aot-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string repo = Tools.RepoRoot, model = Path.Combine(root, "model", "model.safetensors");
            var (trained, trainLog) = Tools.Run("dotnet", $"run -c Release --project samples/FashionMnist -- --limit 600 --epochs 1 --patience 0 --output \"{Path.Combine(root, "model")}\"", repo, TimeSpan.FromMinutes(5));
            Assert.True(trained == 0 && File.Exists(model), trainLog);

            var (published, publishLog) = Tools.Run("dotnet", $"publish samples/Inference -c Release -r linux-x64 -o \"{Path.Combine(root, "bin")}\" -nologo", repo, TimeSpan.FromMinutes(8));
            Assert.True(published == 0, publishLog);
            string binary = Path.Combine(root, "bin", "fashion-classify");
            long size = new FileInfo(binary).Length;
            output.WriteLine($"NativeAOT binary: {size / 1e6:F1} MB");
            Assert.True(size < 15_000_000, $"{size} bytes");

            string images = Path.Combine(repo, "samples", "FashionMnist", "data", "t10k-images-idx3-ubyte.gz");
            var (aot, aotLog) = Tools.Run(binary, $"--model \"{model}\" \"{images}\"", root, TimeSpan.FromMinutes(2));
            var (jit, jitLog) = Tools.Run("dotnet", $"run -c Release --project samples/Inference -- --model \"{model}\" \"{images}\"", repo, TimeSpan.FromMinutes(5));
            Assert.True(aot == 0, aotLog);
            Assert.True(jit == 0, jitLog);
            static string[] Classes(string log) => Regex.Matches(log, @"^t10k-images-idx3-ubyte\.gz#(\d+): (.+) \(\d+\.\d %\)$", RegexOptions.Multiline)
                .Select(m => m.Groups[1].Value + " " + m.Groups[2].Value).ToArray();
            var fromAot = Classes(aotLog);
            Assert.True(fromAot.Length >= 1000, aotLog[..Math.Min(2000, aotLog.Length)]);
            Assert.Equal(Classes(jitLog), fromAot);
            output.WriteLine(aotLog.Split('\n').First(l => l.StartsWith("first prediction", StringComparison.Ordinal)));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }
}
