using Compiled.Nets.Build;
using TorchSharp;

namespace Compiled.Nets.Interop.Tests;

/// <summary>The build patched libLibTorchSharp.so so libtorch loads on Debian 12; the patcher itself behaves.</summary>
public class TorchSharpLoadTests
{
    private static string Native => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Fact]
    public void LibTorch_Loads_AndComputes()
    {
        using var t = torch.ones(3).mul(2).sum();
        Assert.Equal(6f, t.item<float>());
    }

    [Fact]
    public void BuildOutput_IsAlreadyPatched_AndRepatchingChangesNothing()
    {
        var bytes = File.ReadAllBytes(Native);
        var copy = (byte[])bytes.Clone();
        Assert.Equal(ElfPatchResult.AlreadyWeak, ElfVersionNeedPatcher.MarkWeak(copy, "GLIBCXX_3.4.32"));
        Assert.Equal(bytes, copy);
    }

    [Fact]
    public void UnpatchedPackageCopy_GetsPatched_OnlyInTheFlagBytes()
    {
        var pkg = Directory.GetFiles(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"), "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
        if (pkg is null) return; // packages restored elsewhere (custom NUGET_PACKAGES): the build-output test still covers it
        var original = File.ReadAllBytes(pkg);
        var patched = (byte[])original.Clone();
        var r = ElfVersionNeedPatcher.MarkWeak(patched, "GLIBCXX_3.4.32");
        Assert.Equal(ElfPatchResult.Patched, r);
        var diff = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.Single(diff);
        Assert.Equal(original[diff[0]] | 0x2, patched[diff[0]]);
        Assert.Equal(patched, File.ReadAllBytes(Native));
    }

    [Fact]
    public void LibraryWithoutThatNeed_IsLeftUntouched()
    {
        var libc = new[] { "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1" }.FirstOrDefault(File.Exists);
        Assert.NotNull(libc);
        var bytes = File.ReadAllBytes(libc!);
        var copy = (byte[])bytes.Clone();
        Assert.Equal(ElfPatchResult.NotNeeded, ElfVersionNeedPatcher.MarkWeak(copy, "GLIBCXX_3.4.32"));
        Assert.Equal(bytes, copy);
    }

    [Fact]
    public void TruncatedOrGarbageInput_IsAClearError()
    {
        Assert.Contains("not an ELF", Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatcher.MarkWeak(new byte[100], "X")).Message);
        var head = File.ReadAllBytes(Native).AsSpan(0, 4096).ToArray();
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatcher.MarkWeak(head, "GLIBCXX_3.4.32", "lib.so")).Message);
    }
}
