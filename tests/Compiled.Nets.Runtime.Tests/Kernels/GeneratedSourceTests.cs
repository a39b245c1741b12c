using System.Diagnostics;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>Generated kernel sources match their generators: nobody edited the output instead of the script.</summary>
public class GeneratedSourceTests
{
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return dir!.FullName;
    }

    [Fact]
    public void GemmMicroKernel_IsWhatItsScriptWrites()
    {
        string root = RepoRoot(), output = Path.Combine(Path.GetTempPath(), $"gemm-{Guid.NewGuid():N}.cs");
        try
        {
            using (var p = Process.Start(new ProcessStartInfo("python3", $"\"{Path.Combine(root, "tools", "gen_gemm_microkernel.py")}\" \"{output}\"") { RedirectStandardError = true })!)
            {
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                Assert.True(p.ExitCode == 0, err);
            }
            Assert.Equal(File.ReadAllText(Path.Combine(root, "src", "Runtime", "Kernels", "GemmMicroKernel.g.cs")), File.ReadAllText(output));
        }
        finally { File.Delete(output); }
    }
}
