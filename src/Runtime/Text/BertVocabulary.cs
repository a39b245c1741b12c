using System.Text;

namespace Compiled.Nets.Text;

/// <summary>Reads BERT's <c>vocab.txt</c>: one WordPiece token per line, a token's id being its line number.</summary>
public static class BertVocabulary
{
    /// <summary>The largest vocab.txt read (multilingual BERT's is ≈ 1 MB).</summary>
    public const long MaxBytes = 64L << 20;

    /// <summary>Reads the tokens of a vocab.txt (UTF-8, LF or CRLF line endings).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Not a regular file (a device, a pipe), larger than <see cref="MaxBytes"/>,
    /// not UTF-8, empty, with CR-only line endings, or a token empty or repeated; the message names the file and line.</exception>
    public static IReadOnlyList<string> Read(string path)
    {
        return Parse(Serialization.BoundedFile.Read(path, MaxBytes, "a vocabulary"), path);
    }

    /// <summary>The tokens of vocab.txt bytes; <paramref name="path"/> names them in errors.</summary>
    internal static IReadOnlyList<string> Parse(byte[] bytes, string path)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException e) { throw new InvalidDataException($"{path} is not UTF-8 (byte {e.Index}).", e); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (text.Contains('\r') && !text.Contains('\n'))
            throw new InvalidDataException($"{path} uses CR-only line endings: it would read as one token. Convert it to LF line endings.");
        var tokens = text.Split('\n');
        int count = tokens.Length > 0 && tokens[^1].Length == 0 ? tokens.Length - 1 : tokens.Length; // the final newline
        if (count == 0) throw new InvalidDataException($"{path} is empty.");
        var result = new string[count];
        var seen = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string token = tokens[i].EndsWith('\r') ? tokens[i][..^1] : tokens[i];
            if (token.Length == 0) throw new InvalidDataException($"{path}, line {i + 1}: an empty token.");
            if (token.Contains('\r')) throw new InvalidDataException($"{path}, line {i + 1}: a carriage return inside a token.");
            if (!seen.TryAdd(token, i)) throw new InvalidDataException($"{path}, line {i + 1}: '{token}' repeats line {seen[token] + 1}; ids would be ambiguous.");
            result[i] = token;
        }
        return result;
    }
}
