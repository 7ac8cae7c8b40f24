/// The release of llmd this build belongs to; daemon and client share it.
public enum LLMDVersion {
    public static let string = "0.1.0"
}
