using Compiled.Nets.Data;

namespace Compiled.Nets.Samples.FashionMnist;

/// <summary>Finds Fashion-MNIST: a given folder, the Debian package's files, or the subset shipped with the sample.</summary>
public static class FashionMnistData
{
    /// <summary>Where <c>apt-get install dataset-fashion-mnist</c> puts the files.</summary>
    public static readonly string[] DebianFolders = ["/usr/share/dataset-fashion-mnist", "/usr/share/fashion-mnist", "/usr/share/datasets/fashion-mnist"];

    /// <summary>The folder of the subset shipped in the repository (copied next to the program).</summary>
    public static string ShippedFolder => Path.Combine(AppContext.BaseDirectory, "data");

    /// <summary>Loads train and test sets; <paramref name="source"/> says which files were used.</summary>
    public static (Dataset Train, Dataset Test, string Source) Load(string? folder)
    {
        if (folder is not null)
        {
            var found = Find(folder) ?? throw new FileNotFoundException($"No Fashion-MNIST files (train-images-idx3-ubyte[.gz] etc.) in '{folder}'.");
            return Read(found, $"{folder}");
        }
        foreach (var f in DebianFolders)
            if (Find(f) is { } debian) return Read(debian, $"full Fashion-MNIST from the Debian package ({f})");
        var shipped = Find(ShippedFolder) ?? throw new FileNotFoundException($"The shipped subset is missing from '{ShippedFolder}'.");
        return Read(shipped, $"the small subset shipped with the sample ({ShippedFolder}); install the Debian package 'dataset-fashion-mnist' for the full 60k/10k set");
    }

    private static (Dataset, Dataset, string) Read(string[] f, string source) =>
        (DatasetReaders.ReadIdx(f[0], f[1], 10, DatasetReaders.FashionMnistClasses), DatasetReaders.ReadIdx(f[2], f[3], 10, DatasetReaders.FashionMnistClasses), source);

    private static string[]? Find(string folder)
    {
        if (!Directory.Exists(folder)) return null;
        string? F(string stem) => new[] { stem + ".gz", stem }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists);
        var files = new[] { F("train-images-idx3-ubyte"), F("train-labels-idx1-ubyte"), F("t10k-images-idx3-ubyte"), F("t10k-labels-idx1-ubyte") };
        return files.All(x => x is not null) ? files.Select(x => x!).ToArray() : null;
    }
}
