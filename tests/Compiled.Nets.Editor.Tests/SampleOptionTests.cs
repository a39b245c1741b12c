namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// The samples as a user runs them with impossible options or missing input: one line naming the option or the file,
/// exit code 1, no stack trace, and nothing trained or written (an epoch count of 0 once trained nothing and wrote the
/// untrained weights over the last model).
/// </summary>
public class SampleOptionTests
{
    private static (int ExitCode, string Output) Sample(string name, string arguments)
    {
        string dll = Path.Combine(Tools.RepoRoot, "samples", name, "bin", "Release", "net10.0", name + ".dll");
        if (!File.Exists(dll))
        {
            var (built, log) = Tools.Run("dotnet", $"build samples/{name} -c Release -nologo", Tools.RepoRoot, TimeSpan.FromMinutes(5));
            Assert.True(built == 0, log);
        }
        return Tools.Run("dotnet", $"\"{dll}\" {arguments}", Tools.RepoRoot, TimeSpan.FromMinutes(2));
    }

    [Theory]
    [InlineData("FashionMnist", "--epochs 0", "--epochs must be at least 1, got 0.")]
    [InlineData("FashionMnist", "--batch-size -3", "--batch-size must be at least 1, got -3.")]
    [InlineData("FashionMnist", "--lr NaN", "--lr must be a positive number, got NaN.")]
    [InlineData("FashionMnist", "--lr abc", "Cannot parse argument 'abc' for option '--lr'")]
    [InlineData("FashionMnist", "--data /nonexistent", "error: No Fashion-MNIST files (train-images-idx3-ubyte[.gz] etc.) in '/nonexistent'.")]
    [InlineData("BertSpam", "--warmup 2", "--warmup must be a fraction in [0, 1], got 2.")]
    [InlineData("BertSpam", "--epochs -1", "--epochs must be at least 1, got -1.")]
    [InlineData("BertSpam", "--max-grad-norm -1", "--max-grad-norm must be a number at least 0 (0: off), got -1.")]
    [InlineData("BertSpam", "--limit 40 --freeze top-k --top-k 5", "error: --top-k 5: BertTinyClassifier has 2 encoder layers.")]
    [InlineData("FashionMnist", "--limit 3", "error: --limit 3 leaves no image for validation")]
    [InlineData("BertSpam", "--limit 4", "error: 4 emails leave none for validation or test")]
    [InlineData("FashionMnist", "--limit 100 --tf32", "error: --tf32 applies to a GPU's matmuls; add --device gpu (or auto).")]
    [InlineData("BertSpam", "--limit 40 --tf32", "error: --tf32 applies to a GPU's matmuls; add --device gpu (or auto).")]
    public void An_impossible_option_or_missing_input_is_one_line_and_exit_code_1(string sample, string arguments, string message)
    {
        string output = Path.Combine(Path.GetTempPath(), "cnet-options-" + Guid.NewGuid().ToString("N")[..8]);
        var (code, log) = Sample(sample, $"{arguments} --output \"{output}\"");
        Assert.True(code == 1, $"exit code {code}:\n{log}");
        Assert.Contains(message, log);
        Assert.DoesNotContain("Unhandled", log);
        Assert.DoesNotContain("   at ", log);
        Assert.False(Directory.Exists(output), "the output folder was written");
    }
}
