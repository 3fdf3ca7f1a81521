-- dgram.lua: a Wireshark dissector for dgram's envelope (docs/PROTOCOL.md).
--
-- Install: copy this file into the personal Lua plugin folder
-- (~/.local/lib/wireshark/plugins/), or load it for one run with
-- `tshark -X lua_script:contrib/wireshark/dgram.lua`. docs/wireshark.md
-- says more: the fields, display filters, running as root.
--
-- dgram uses any UDP port, so the dissector is a heuristic one: a UDP
-- datagram whose first byte is 0xF5 is an envelope (PROTOCOL.md section 1:
-- 0xF5 never begins UTF-8 text, STUN begins with 0x00 or 0x01, TURN's
-- ChannelData with 0x40 to 0x7F). Nothing else is claimed: the plain text
-- of `send` and `listen` and the STUN/TURN traffic on a rendezvous's port
-- are left to the other dissectors. "Decode As..." on a UDP port forces it,
-- and then shows a plain datagram as plain.
--
-- Field names follow PROTOCOL.md's (dgram.seq, dgram.try, dgram.session).
-- A malformed envelope gets an expert item of the Malformed group with
-- dgram's own reason where dgram gives one ("unknown kind 8", "body does
-- not decode", "a handshake datagram of the wrong length").

local dgram = Proto("dgram", "dgram envelope")

local MAGIC = 0xF5
local VERSION = 1
local MAX_NAME = 64

local kinds = {
    [1] = "message",
    [2] = "receipt",
    [3] = "hello",
    [4] = "bye",
    [5] = "sealed",
    [6] = "handshake",
    [7] = "secured",
    [8] = "path challenge",
    [9] = "path response",
    [10] = "registration",
    [11] = "rendezvous answer",
    [12] = "path probe",
    [13] = "path ack",
    [14] = "MTU probe",
    [15] = "MTU answer",
}

local steps = { [1] = "init", [2] = "reply", [3] = "finish", [4] = "cookie", [5] = "fail" }
local methods = { [1] = "key file", [2] = "code" }
local statuses = {
    [1] = "waiting",
    [2] = "paired (you came first)",
    [3] = "paired (you came second)",
    [4] = "taken",
    [5] = "busy",
}
local families = { [4] = "IPv4", [6] = "IPv6" }
local directions = { [1] = "forward", [2] = "reverse" }

-- Handshake lengths by step and method (PROTOCOL.md 10.2), and the parts
-- of each body in order: {field, length}. Each step has one exact length.
local COOKIE, SPAKE, NOISE, PAD = 16, 33, 56, 40
local HANDSHAKE_HEADER = 21
local handshake_bodies = {
    ["1/1"] = { { "cookie", COOKIE }, { "noise", NOISE } },
    ["1/2"] = { { "cookie", COOKIE }, { "spake2", SPAKE }, { "padding", PAD } },
    ["2/1"] = { { "noise", NOISE } },
    ["2/2"] = { { "spake2", SPAKE }, { "noise", NOISE } },
    ["3/2"] = { { "noise", NOISE } },
    ["4/1"] = { { "cookie", COOKIE } },
    ["4/2"] = { { "cookie", COOKIE } },
    ["5/2"] = {},
}

local f = {
    magic = ProtoField.uint8("dgram.magic", "magic", base.HEX),
    version = ProtoField.uint8("dgram.version", "version", base.DEC),
    kind = ProtoField.uint8("dgram.kind", "kind", base.DEC, kinds),
    -- message, receipt, hello, bye
    session = ProtoField.bytes("dgram.session", "session", base.NONE),
    seq = ProtoField.uint64("dgram.seq", "seq", base.DEC),
    try = ProtoField.uint8("dgram.try", "try", base.DEC),
    name_len = ProtoField.uint32("dgram.name_len", "name length", base.DEC),
    name = ProtoField.string("dgram.name", "name"),
    payload_len = ProtoField.uint32("dgram.payload_len", "payload length", base.DEC),
    payload = ProtoField.bytes("dgram.payload", "payload", base.NONE),
    text = ProtoField.string("dgram.text", "text"),
    challenge = ProtoField.bytes("dgram.challenge", "challenge", base.NONE),
    answer = ProtoField.bytes("dgram.answer", "answer", base.NONE),
    trailing = ProtoField.bytes("dgram.trailing", "bytes after the last field (ignored)", base.NONE),
    -- sealed (room key)
    prefix = ProtoField.bytes("dgram.prefix", "prefix", base.NONE),
    counter = ProtoField.uint64("dgram.counter", "counter", base.DEC),
    ciphertext = ProtoField.bytes("dgram.ciphertext", "ciphertext", base.NONE),
    ciphertext_len = ProtoField.uint32("dgram.ciphertext_len", "ciphertext length", base.DEC),
    tag = ProtoField.bytes("dgram.tag", "tag", base.NONE),
    -- handshake
    step = ProtoField.uint8("dgram.step", "step", base.DEC, steps),
    method = ProtoField.uint8("dgram.method", "method", base.DEC, methods),
    sender = ProtoField.bytes("dgram.sender", "sender", base.NONE),
    receiver = ProtoField.bytes("dgram.receiver", "receiver", base.NONE),
    cookie = ProtoField.bytes("dgram.cookie", "cookie", base.NONE),
    spake2 = ProtoField.bytes("dgram.spake2", "SPAKE2 message", base.NONE),
    noise = ProtoField.bytes("dgram.noise", "Noise message", base.NONE),
    noise_ephemeral = ProtoField.bytes("dgram.noise.ephemeral", "ephemeral public key", base.NONE),
    noise_payload = ProtoField.bytes("dgram.noise.payload", "encrypted payload (the sender's session)", base.NONE),
    noise_tag = ProtoField.bytes("dgram.noise.tag", "payload tag", base.NONE),
    padding = ProtoField.bytes("dgram.padding", "padding", base.NONE),
    -- secured
    session_id = ProtoField.bytes("dgram.session_id", "session id", base.NONE),
    epoch = ProtoField.uint8("dgram.epoch", "epoch", base.DEC),
    -- path challenge and response (inside kind 7)
    token = ProtoField.bytes("dgram.token", "token", base.NONE),
    family = ProtoField.uint8("dgram.family", "family", base.DEC, families),
    seen_ipv4 = ProtoField.ipv4("dgram.seen.ipv4", "address seen"),
    seen_ipv6 = ProtoField.ipv6("dgram.seen.ipv6", "address seen"),
    seen_port = ProtoField.uint16("dgram.seen.port", "port seen", base.DEC),
    -- rendezvous
    number = ProtoField.uint16("dgram.number", "number", base.DEC),
    registrant = ProtoField.bytes("dgram.registrant", "registrant", base.NONE),
    status = ProtoField.uint8("dgram.status", "status", base.DEC, statuses),
    count = ProtoField.uint8("dgram.count", "count", base.DEC),
    candidate = ProtoField.string("dgram.candidate", "candidate"),
    candidate_family = ProtoField.uint8("dgram.candidate.family", "family", base.DEC, families),
    candidate_port = ProtoField.uint16("dgram.candidate.port", "port", base.DEC),
    candidate_ipv4 = ProtoField.ipv4("dgram.candidate.ipv4", "address"),
    candidate_ipv6 = ProtoField.ipv6("dgram.candidate.ipv6", "address"),
    -- probe and ack
    flags = ProtoField.uint8("dgram.flags", "flags", base.HEX),
    flag_nat = ProtoField.bool("dgram.flags.nat", "NAT", 8, nil, 0x01),
    flag_relayed = ProtoField.bool("dgram.flags.relayed", "RELAYED", 8, nil, 0x02),
    flag_nominate = ProtoField.bool("dgram.flags.nominate", "NOMINATE", 8, nil, 0x04),
    -- MTU probe and answer
    direction = ProtoField.uint8("dgram.direction", "direction", base.DEC, directions),
    size = ProtoField.uint16("dgram.size", "size", base.DEC),
    -- plain datagrams (only under "Decode As")
    plain = ProtoField.bytes("dgram.plain", "plain datagram (not an envelope)", base.NONE),
}
local field_list = {}
for _, field in pairs(f) do
    field_list[#field_list + 1] = field
end
dgram.fields = field_list

local e = {
    malformed = ProtoExpert.new("dgram.malformed", "malformed dgram envelope",
        expert.group.MALFORMED, expert.severity.ERROR),
    encrypted = ProtoExpert.new("dgram.encrypted", "encrypted: cannot be decoded without the keys",
        expert.group.UNDECODED, expert.severity.NOTE),
}
dgram.experts = { e.malformed, e.encrypted }

-- Raised inside a kind's decoder: the envelope is malformed for `reason`.
local Malformed = {}

local function malformed(reason)
    error(setmetatable({ reason = reason }, Malformed), 0)
end

-- A reader over the datagram: every read checks the length first, so a
-- short body is "body does not decode" (dgram's reason), never a Lua error.
local function reader(tvb, offset)
    local r = { tvb = tvb, at = offset }
    function r.left()
        return tvb:len() - r.at
    end
    function r.take(n, why)
        if n > r.left() then
            malformed(why or "body does not decode")
        end
        local range = tvb:range(r.at, n)
        r.at = r.at + n
        return range
    end
    return r
end

-- An unsigned LEB128 varint as postcard reads a u64 (PROTOCOL.md section
-- 2): at most 10 bytes, the tenth at most 1; returns the UInt64 and the
-- range it took.
local function varint(r)
    local value = UInt64(0)
    local start = r.at
    for i = 0, 9 do
        local byte = r.take(1):uint()
        if i == 9 and byte > 1 then
            malformed("body does not decode")
        end
        value = value + UInt64(byte % 128):lshift(7 * i)
        if byte < 128 then
            return value, r.tvb:range(start, r.at - start)
        end
    end
    malformed("body does not decode")
end

-- Whether a Lua string is UTF-8 as Rust's str::from_utf8 takes it (no
-- overlong forms, no surrogates, nothing above U+10FFFF).
local function is_utf8(s)
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        local len, low, high
        if c < 0x80 then
            len = 1
        elseif c >= 0xC2 and c <= 0xDF then
            len = 2
        elseif c >= 0xE0 and c <= 0xEF then
            len = 3
        elseif c >= 0xF0 and c <= 0xF4 then
            len = 4
        else
            return false
        end
        if i + len - 1 > n then
            return false
        end
        low, high = 0x80, 0xBF
        if c == 0xE0 then
            low = 0xA0
        elseif c == 0xED then
            high = 0x9F
        elseif c == 0xF0 then
            low = 0x90
        elseif c == 0xF4 then
            high = 0x8F
        end
        for k = 1, len - 1 do
            local b = s:byte(i + k)
            if k == 1 and (b < low or b > high) then
                return false
            end
            if k > 1 and (b < 0x80 or b > 0xBF) then
                return false
            end
        end
        i = i + len
    end
    return true
end

-- A varint length and that many bytes (a bytes or string field).
local function length_prefixed(r, tree, len_field)
    local len, len_range = varint(r)
    if len > UInt64(r.left()) then
        malformed("body does not decode")
    end
    len = len:tonumber()
    tree:add(len_field, len_range, len)
    if len == 0 then
        return nil, ""
    end
    local range = r.take(len)
    return range, range:raw()
end

-- A name (a string field): UTF-8 (its length is checked by check_name).
local function name_field(r, tree)
    local range, raw = length_prefixed(r, tree, f.name_len)
    if not is_utf8(raw) then
        malformed("body does not decode")
    end
    if range then
        tree:add(f.name, range, raw)
    else
        tree:add(f.name, r.tvb:range(r.at - 1, 1), ""):set_text("name: (none)")
    end
    return raw
end

-- dgram checks the fields' ranges only once the whole body decoded (a
-- message with seq 0 that ends early "does not decode"): so do these.
local function check_name(name)
    if #name > MAX_NAME then
        malformed("name longer than 64 bytes")
    end
end

local function check_seq(seq, try)
    if seq == UInt64(0) or seq > UInt64(0xFFFFFFFF, 0x1FFFFF) then
        malformed("sequence number out of range")
    end
    if try == 0 then
        malformed("try 0")
    end
end

-- Text for the Info column: quoted, control characters escaped, cut.
local function quoted(s)
    local shown = s
    if #shown > 40 then
        shown = shown:sub(1, 40) .. "..."
    end
    shown = shown:gsub('[%c"\\]', function(c)
        return string.format("\\x%02x", c:byte())
    end)
    return '"' .. shown .. '"'
end

local function hex(range)
    return tostring(range:bytes()):lower()
end

local function trailing(r, tree)
    if r.left() > 0 then
        tree:add(f.trailing, r.take(r.left()))
    end
end

-- Each kind's decoder: reads the body from `r` into `tree` and returns the
-- Info column's text. It calls malformed() for what dgram calls malformed.
local decoders = {}

local function seq_and_try(r, tree)
    local seq, seq_range = varint(r)
    tree:add(f.seq, seq_range, seq)
    local try_range = r.take(1)
    tree:add(f.try, try_range)
    return seq, try_range:uint()
end

decoders[1] = function(r, tree)
    tree:add(f.session, r.take(8))
    local seq, try = seq_and_try(r, tree)
    local name = name_field(r, tree)
    local range, raw = length_prefixed(r, tree, f.payload_len)
    if range then
        tree:add(f.payload, range)
    end
    check_seq(seq, try)
    check_name(name)
    local shown
    if is_utf8(raw) then
        if range then
            tree:add(f.text, range, raw)
        end
        shown = quoted(raw)
    else
        shown = string.format("(%d bytes, not UTF-8)", #raw)
    end
    trailing(r, tree)
    local from = ""
    if name ~= "" then
        from = " from " .. quoted(name)
    end
    return string.format("message seq=%s try=%d%s %s", tostring(seq), try, from, shown)
end

decoders[2] = function(r, tree)
    tree:add(f.session, r.take(8))
    local seq, try = seq_and_try(r, tree)
    check_seq(seq, try)
    trailing(r, tree)
    return string.format("receipt seq=%s try=%d", tostring(seq), try)
end

local function presence(word)
    return function(r, tree)
        tree:add(f.session, r.take(8))
        local name = name_field(r, tree)
        check_name(name)
        local tokens = ""
        if r.left() >= 16 then
            local challenge, answer = r.take(8), r.take(8)
            tree:add(f.challenge, challenge)
            tree:add(f.answer, answer)
            if hex(challenge) ~= "0000000000000000" then
                tokens = tokens .. " challenge"
            end
            if hex(answer) ~= "0000000000000000" then
                tokens = tokens .. " answer"
            end
        else
            tree:add(r.tvb:range(r.at, r.left()),
                "no tokens (fewer than 16 bytes after the name: both read as zeros)")
        end
        trailing(r, tree)
        return string.format("%s %s%s", word, quoted(name), tokens)
    end
end
decoders[3] = presence("hello")
decoders[4] = presence("bye")

-- The rest of a sealed (5) or secured (7) datagram: the ciphertext, then
-- the 16-byte tag; returns the ciphertext's length.
local function ciphertext_and_tag(r, tree)
    local n = r.left() - 16
    tree:add(f.ciphertext_len, r.tvb:range(r.at, n), n)
    if n > 0 then
        tree:add(f.ciphertext, r.take(n))
    end
    tree:add(f.tag, r.take(16))
    return n
end

decoders[5] = function(r, tree)
    -- Header, prefix and counter (the 24-byte nonce), a ciphertext, a tag.
    if r.left() < 16 + 8 + 16 then
        malformed("a sealed envelope that does not decode (shorter than nonce and tag, 43 bytes)")
    end
    tree:add(f.prefix, r.take(16))
    local counter = r.take(8)
    tree:add(f.counter, counter)
    local n = ciphertext_and_tag(r, tree)
    tree:add_proto_expert_info(e.encrypted,
        "sealed with a room key: the inner envelope cannot be decoded without the key file")
    return string.format("sealed counter=%s (%d bytes inside, needs the key)",
        tostring(counter:uint64()), n)
end

local function noise_message(tree, range)
    local sub = tree:add(f.noise, range)
    sub:add(f.noise_ephemeral, range:range(0, 32))
    sub:add(f.noise_payload, range:range(32, 8))
    sub:add(f.noise_tag, range:range(40, 16))
end

decoders[6] = function(r, tree)
    local step_range, method_range = r.take(1, "a handshake datagram of the wrong length"),
        r.take(1, "a handshake datagram of the wrong length")
    tree:add(f.step, step_range)
    tree:add(f.method, method_range)
    local step, method = step_range:uint(), method_range:uint()
    local body = handshake_bodies[step .. "/" .. method]
    if not body then
        malformed("an unknown handshake step or method")
    end
    local expected = HANDSHAKE_HEADER
    for _, part in ipairs(body) do
        expected = expected + part[2]
    end
    local total = r.tvb:len()
    if total ~= expected then
        malformed(string.format("a handshake datagram of the wrong length (%d bytes; %s, %s is %d)",
            total, steps[step], methods[method], expected))
    end
    tree:add(f.sender, r.take(8))
    tree:add(f.receiver, r.take(8))
    for _, part in ipairs(body) do
        local range = r.take(part[2])
        if part[1] == "noise" then
            noise_message(tree, range)
        elseif part[1] == "padding" then
            tree:add(f.padding, range)
            for i = 0, range:len() - 1 do
                if range:range(i, 1):uint() ~= 0 then
                    malformed("a handshake init whose padding is not zeros")
                end
            end
        else
            tree:add(f[part[1]], range)
        end
    end
    return string.format("handshake %s, %s", steps[step], methods[method])
end

decoders[7] = function(r, tree)
    if r.left() < 8 + 1 + 8 + 16 then
        malformed("a secured datagram shorter than its header and tag (36 bytes)")
    end
    local session_id = r.take(8)
    tree:add(f.session_id, session_id)
    local epoch = r.take(1)
    tree:add(f.epoch, epoch)
    local counter = r.take(8)
    tree:add(f.counter, counter)
    local n = ciphertext_and_tag(r, tree)
    local inside
    if n == 0 then
        inside = "a keepalive: an empty inner envelope"
    else
        inside = string.format("%d bytes inside: a message, a receipt or a path check", n)
    end
    tree:add_proto_expert_info(e.encrypted,
        "secured in a session: " .. inside .. ", which cannot be decoded without the session's keys")
    local summary = string.format("secured session=%s epoch=%d counter=%s", hex(session_id),
        epoch:uint(), tostring(counter:uint64()))
    if n == 0 then
        return summary .. " keepalive"
    end
    return summary .. string.format(" (%d bytes inside, needs the keys)", n)
end

-- The path challenge's and response's fields (PROTOCOL.md 10.8). They are
-- malformed on the wire (only a secured datagram holds them), but their
-- fields are still shown (see dissect_envelope).
decoders[8] = function(r, tree)
    tree:add(f.token, r.take(8))
    local family = r.take(1)
    tree:add(f.family, family)
    local seen
    if family:uint() == 4 and r.left() == 6 then
        local ip = r.take(4)
        tree:add(f.seen_ipv4, ip)
        seen = tostring(ip:ipv4())
    elseif family:uint() == 6 and r.left() == 18 then
        local ip = r.take(16)
        tree:add(f.seen_ipv6, ip)
        seen = "[" .. tostring(ip:ipv6()) .. "]"
    else
        malformed("body does not decode")
    end
    local port = r.take(2)
    tree:add(f.seen_port, port)
    return string.format("path challenge seen=%s:%d", seen, port:uint())
end

decoders[9] = function(r, tree)
    local token = r.take(8)
    tree:add(f.token, token)
    if r.left() ~= 0 then
        malformed("body does not decode")
    end
    return "path response token=" .. hex(token)
end

-- A candidate (PROTOCOL.md 12.1): family, port, address. Returns its text
-- and whether dgram could send to it (a registration's rule).
local function candidate(r, tree)
    local start = r.at
    local family = r.take(1)
    local port = r.take(2)
    local ip, text, usable
    if family:uint() == 4 then
        ip = r.take(4)
        local addr = tostring(ip:ipv4())
        text = addr .. ":" .. port:uint()
        usable = addr ~= "0.0.0.0" and addr ~= "255.255.255.255"
            and not (ip:range(0, 1):uint() >= 224 and ip:range(0, 1):uint() <= 239)
    elseif family:uint() == 6 then
        ip = r.take(16)
        text = "[" .. tostring(ip:ipv6()) .. "]:" .. port:uint()
        usable = hex(ip) ~= string.rep("0", 32) and ip:range(0, 1):uint() ~= 0xFF
    else
        malformed("candidate")
    end
    local sub = tree:add(f.candidate, r.tvb:range(start, r.at - start), text)
    sub:add(f.candidate_family, family)
    sub:add(f.candidate_port, port)
    if family:uint() == 4 then
        sub:add(f.candidate_ipv4, ip)
    else
        sub:add(f.candidate_ipv6, ip)
    end
    return text, usable and port:uint() ~= 0
end

decoders[10] = function(r, tree)
    local total = r.tvb:len()
    if total ~= 112 then
        malformed(string.format("length (a registration is exactly 112 bytes, not %d)", total))
    end
    local number = r.take(2)
    tree:add(f.number, number)
    tree:add(f.registrant, r.take(8))
    local count = r.take(1)
    tree:add(f.count, count)
    if number:uint() < 1 or number:uint() > 999 then
        malformed("number (outside 1 to 999)")
    end
    if count:uint() > 4 then
        malformed("too_many_candidates (more than 4)")
    end
    for _ = 1, count:uint() do
        local ok, text, usable = pcall(candidate, r, tree)
        if not ok or not usable then
            malformed("candidate")
        end
    end
    local padding = r.take(r.left())
    tree:add(f.padding, padding)
    for i = 0, padding:len() - 1 do
        if padding:range(i, 1):uint() ~= 0 then
            malformed("padding (a byte that is not zero)")
        end
    end
    return string.format("registration number=%d candidates=%d", number:uint(), count:uint())
end

decoders[11] = function(r, tree)
    local number = r.take(2)
    tree:add(f.number, number)
    local status = r.take(1)
    tree:add(f.status, status)
    local count = r.take(1)
    tree:add(f.count, count)
    if not statuses[status:uint()] then
        malformed("unknown status " .. status:uint())
    end
    local texts = {}
    for _ = 1, count:uint() do
        local text = candidate(r, tree)
        texts[#texts + 1] = text
    end
    if r.left() ~= 0 then
        malformed("body does not decode (bytes after the candidates)")
    end
    local summary = string.format("rendezvous answer number=%d %s", number:uint(), statuses[status:uint()])
    if #texts > 0 then
        summary = summary .. " " .. table.concat(texts, " ")
    end
    return summary
end

local function probe(word)
    return function(r, tree)
        local total = r.tvb:len()
        if total ~= 14 then
            malformed(string.format("not a %s: %d bytes, a %s is exactly 14", word, total, word))
        end
        local number = r.take(2)
        tree:add(f.number, number)
        local flags = r.take(1)
        local sub = tree:add(f.flags, flags)
        sub:add(f.flag_nat, flags)
        sub:add(f.flag_relayed, flags)
        sub:add(f.flag_nominate, flags)
        local token = r.take(8)
        tree:add(f.token, token)
        if flags:uint() >= 8 then
            malformed(string.format("not a %s: undefined flags 0x%02x", word, flags:uint()))
        end
        local names = {}
        for bit, name in pairs({ [1] = "NAT", [2] = "RELAYED", [4] = "NOMINATE" }) do
            if math.floor(flags:uint() / bit) % 2 == 1 then
                names[#names + 1] = name
            end
        end
        table.sort(names)
        local shown = ""
        if #names > 0 then
            shown = " " .. table.concat(names, ",")
        end
        return string.format("%s number=%d%s token=%s", word, number:uint(), shown, hex(token))
    end
end
decoders[12] = probe("path probe")
decoders[13] = probe("path ack")

-- MTU probes and answers (PROTOCOL.md section 15): direction, token,
-- size, zero padding; what `size` must be depends on kind and direction.
-- The reasons are `dgram mtu`'s (src/proto/mtu.rs), which says "MTU
-- probe" of answers too.
local function mtu(kind)
    return function(r, tree)
        local word = kinds[kind]
        local total = r.tvb:len()
        if total < 14 then
            malformed("MTU probe shorter than its 14-byte head")
        end
        local direction = r.take(1)
        tree:add(f.direction, direction)
        local token = r.take(8)
        tree:add(f.token, token)
        local size_range = r.take(2)
        tree:add(f.size, size_range)
        local padding
        if r.left() > 0 then
            padding = r.take(r.left())
            tree:add(f.padding, padding)
        end
        local way, size = directions[direction:uint()], size_range:uint()
        if not way then
            malformed(string.format("MTU probe with unknown direction %d", direction:uint()))
        end
        local fits
        if kind == 14 and way == "forward" then
            fits = size == total
        elseif kind == 15 and way == "forward" then
            fits = total == 14 and size >= 14
        elseif kind == 14 then
            fits = size >= 14 and size <= total
        else
            fits = size == total
        end
        if not fits then
            malformed(string.format("MTU probe's size %d does not fit its %d bytes", size, total))
        end
        for i = 0, (padding and padding:len() or 0) - 1 do
            if padding:range(i, 1):uint() ~= 0 then
                malformed("MTU probe with non-zero padding")
            end
        end
        return string.format("%s %s size=%d token=%s", word, way, size, hex(token))
    end
end
decoders[14] = mtu(14)
decoders[15] = mtu(15)

-- Dissects one datagram that starts with 0xF5 into `tree`. A datagram
-- that is not an envelope gets dgram's reason as a Malformed expert item.
local function dissect_envelope(tvb, pinfo, tree)
    local item = tree:add(dgram, tvb:range())
    local info
    local r = reader(tvb, 0)
    local ok, err = pcall(function()
        item:add(f.magic, r.take(1))
        if tvb:reported_len() < 3 then
            malformed("shorter than the 3-byte header")
        end
        -- A capture that kept less than the datagram (dgram's --pcap of a
        -- listener with --max-size, or a snap length): like dgram, which
        -- calls an envelope cut short by its buffer malformed, trust none
        -- of its fields.
        local cut = string.format(
            "cut short: %d of its %d bytes captured (a listener's --max-size or the snap length)",
            tvb:len(), tvb:reported_len())
        if tvb:len() < 3 then
            malformed(cut)
        end
        local version = r.take(1)
        item:add(f.version, version)
        local kind = r.take(1)
        item:add(f.kind, kind)
        if tvb:len() < tvb:reported_len() then
            malformed(cut)
        end
        if version:uint() ~= VERSION then
            malformed("unknown version " .. version:uint())
        end
        local decoder = decoders[kind:uint()]
        if not decoder then
            malformed("unknown kind " .. kind:uint())
        end
        item:append_text(", " .. kinds[kind:uint()])
        if kind:uint() ~= 8 and kind:uint() ~= 9 then
            info = decoder(r, item)
            return
        end
        -- A path check exists only inside a secured datagram: on the wire
        -- dgram calls it malformed ("unknown kind 8"), and so does this,
        -- after showing its fields (the worked examples print them).
        local reason = string.format(
            "unknown kind %d: a %s exists only inside a secured datagram (kind 7)",
            kind:uint(), kinds[kind:uint()])
        local decoded, why = pcall(decoder, r, item)
        if not decoded then
            if getmetatable(why) ~= Malformed then
                error(why, 0)
            end
            reason = reason .. "; its body does not decode either"
        end
        malformed(reason)
    end)
    if not ok then
        if getmetatable(err) ~= Malformed then
            error(err, 0)
        end
        item:add_proto_expert_info(e.malformed, err.reason)
        info = "malformed: " .. err.reason
    end
    pinfo.cols.protocol = "dgram"
    pinfo.cols.info = info
end

local function dissect_plain(tvb, pinfo, tree)
    local item = tree:add(dgram, tvb:range())
    item:append_text(", plain datagram")
    if tvb:len() > 0 then
        item:add(f.plain, tvb:range())
    end
    pinfo.cols.protocol = "dgram"
    local raw = tvb:len() > 0 and tvb:range():raw() or ""
    if is_utf8(raw) then
        pinfo.cols.info = "plain " .. quoted(raw)
    else
        pinfo.cols.info = string.format("plain (%d bytes)", #raw)
    end
end

-- "Decode As" (a port forced to dgram): envelopes and plain datagrams.
function dgram.dissector(tvb, pinfo, tree)
    if tvb:len() > 0 and tvb:range(0, 1):uint() == MAGIC then
        dissect_envelope(tvb, pinfo, tree)
    else
        dissect_plain(tvb, pinfo, tree)
    end
    return tvb:len()
end

-- The heuristic: only datagrams whose first byte is 0xF5.
local function heuristic(tvb, pinfo, tree)
    if tvb:len() == 0 or tvb:range(0, 1):uint() ~= MAGIC then
        return false
    end
    dissect_envelope(tvb, pinfo, tree)
    return true
end

dgram:register_heuristic("udp", heuristic)
-- What goes through a TURN relay (PROTOCOL.md 13): Wireshark's STUN
-- dissector hands ChannelData and DATA attributes to this list.
dgram:register_heuristic("stun", heuristic)
DissectorTable.get("udp.port"):add_for_decode_as(dgram)
