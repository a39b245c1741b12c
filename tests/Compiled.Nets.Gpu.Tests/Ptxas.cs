using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Compiled.Nets.Gpu.Tests;

/// <summary>
/// NVIDIA's PTX assembler, the same translator a CUDA driver runs on a kernel's PTX when it loads it: what it rejects
/// would fail to load on a GPU, and its register count says whether a group of 1024 threads can launch. It comes from
/// Debian's <c>nvidia-cuda-toolkit</c> 11.8 (non-free; the newest CUDA Debian 12 ships and the first with sm_90),
/// downloaded once by its pinned hash into the user's cache and run from there; no GPU and no root needed.
/// <c>COMPILED_NETS_PTXAS</c> names another ptxas.
/// </summary>
internal static partial class Ptxas
{
    private const string Package = "nvidia-cuda-toolkit_11.8.89~11.8.0-5~deb12u1_amd64.deb";
    private const string PackageUrl = "http://deb.debian.org/debian/pool/non-free/n/nvidia-cuda-toolkit/" + Package;
    private const string PackageSha256 = "d1156026e704fe0368b6295db06224ed00a727966fb13454f34e3f3102db0457";

    /// <summary>The newest PTX ISA this ptxas reads.</summary>
    public const string Isa = "7.8";

    private static readonly Lazy<string> s_path = new(Find);

    public static string Path => s_path.Value;

    /// <summary>What ptxas reports for one kernel compiled for <paramref name="arch"/>.</summary>
    public sealed record Report(int Registers, int SharedBytes, string Log);

    public static Report Assemble(string ptx, string arch)
    {
        string dir = Directory.CreateTempSubdirectory("ptxas-").FullName;
        try
        {
            string input = System.IO.Path.Combine(dir, "kernel.ptx");
            File.WriteAllText(input, ptx);
            var (exit, log) = Run(Path, "-arch=" + arch, "-v", "-o", System.IO.Path.Combine(dir, "kernel.cubin"), input);
            if (exit != 0) throw new InvalidOperationException($"ptxas -arch={arch} rejected the kernel (exit {exit}):\n{log}");
            int Field(Regex r) => r.Match(log) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            if (!RegistersLine().IsMatch(log)) throw new InvalidOperationException("ptxas -v printed no register count:\n" + log);
            return new Report(Field(RegistersLine()), Field(SharedLine()), log);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex RegistersLine();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedLine();

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("COMPILED_NETS_PTXAS") is { Length: > 0 } named)
            return File.Exists(named) ? named : throw new FileNotFoundException($"COMPILED_NETS_PTXAS names {named}, which does not exist");
        string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        string folder = System.IO.Path.Combine(cache, "compiled-nets", "ptxas-11.8.89");
        string ptxas = System.IO.Path.Combine(folder, "ptxas");
        if (File.Exists(ptxas)) return ptxas;

        Directory.CreateDirectory(folder);
        string deb = System.IO.Path.Combine(folder, $"download-{Environment.ProcessId}.deb");
        try
        {
            using (var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) })
            using (var body = http.GetStreamAsync(PackageUrl).GetAwaiter().GetResult())
            using (var file = File.Create(deb))
                body.CopyTo(file);
            string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(deb)));
            if (sha != PackageSha256) throw new InvalidDataException($"{PackageUrl} has SHA-256 {sha}, not the pinned {PackageSha256}");
            // dpkg-deb unpacks the package's data (an xz tarball inside an ar archive) without installing anything.
            string unpacked = System.IO.Path.Combine(folder, $"unpacked-{Environment.ProcessId}");
            if (Run("dpkg-deb", "-x", deb, unpacked) is { ExitCode: not 0 } failed) throw new InvalidOperationException("dpkg-deb -x failed: " + failed.Output);
            File.Move(System.IO.Path.Combine(unpacked, "usr", "bin", "ptxas"), ptxas, overwrite: true);
            Directory.Delete(unpacked, recursive: true);
            return ptxas;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException or System.ComponentModel.Win32Exception or TaskCanceledException)
        {
            throw new InvalidOperationException(
                $"ptxas could not be fetched from Debian's {Package} ({e.Message}); set COMPILED_NETS_PTXAS to a ptxas of CUDA 11.8 or later", e);
        }
        finally { File.Delete(deb); }
    }

    /// <summary>Runs a tool to its end (at most a minute): its exit code and what it printed.</summary>
    private static (int ExitCode, string Output) Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException($"{tool} did not end within 60 s"); }
        return (p.ExitCode, output + stderr.Result);
    }
}
