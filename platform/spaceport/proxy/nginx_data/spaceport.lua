-- Spaceport's data plane inside nginx: the route table, each request's way, per-Space counters,
-- and the admin API the control plane drives over a private UNIX socket (proxy/nginx.py).
--
-- The table lives in a shared dict (one copy for all workers, kept across reloads); each
-- worker keeps it decoded and indexed, and decodes it again only when its version changes.
-- A routing change is one PUT: no reload, no process change, no connection closed.

local cjson = require "cjson.safe"
local balancer = require "ngx.balancer"

local M = {}

local PLATFORM = "/.spaceport/"
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
local TOKEN_HEADERS = { "Authorization", "X-Hf-Authorization" }

local routes_dict = ngx.shared.spaceport_routes
local counters = ngx.shared.spaceport_traffic
local certs_dict = ngx.shared.spaceport_certs -- "c:<name>" -> {cert, key}; "a:<token>" -> ACME

local index = { version = false, hosts = {}, prefixed = {} }

local function grouped(pairs_list)
  -- [[name, value], ...] -> { name = value | {values} }: one entry per header name
  local out = {}
  for _, pair in ipairs(pairs_list or {}) do
    local name, value = pair[1], pair[2]
    local have = out[name]
    if have == nil then
      out[name] = value
    elseif type(have) == "table" then
      have[#have + 1] = value
    else
      out[name] = { have, value }
    end
  end
  return out
end

local function decode_table(blob)
  local data, err = cjson.decode(blob)
  if type(data) ~= "table" or type(data.routes) ~= "table" then
    return nil, "not a route table: " .. tostring(err or "no 'routes' list")
  end
  local hosts, prefixed = {}, {}
  for _, r in ipairs(data.routes) do
    local ip, port = tostring(r.upstream or ""):match("^(.+):(%d+)$")
    if not ip or type(r.space_id) ~= "string" or type(r.hosts) ~= "table" then
      return nil, "route without space_id, hosts or upstream host:port: " .. cjson.encode(r)
    end
    r.ip, r.port = ip, tonumber(port) -- an IPv6 address keeps its brackets: [::1]
    r.live = r.live ~= false and ip ~= "0.0.0.0"
    r.set_request = grouped(r.request_headers)
    r.set_response = grouped(r.response_headers)
    local prefix = r.path_prefix
    if prefix == cjson.null then
      prefix = nil
      r.path_prefix = nil
    end
    local route_hosts = r.hosts
    if #route_hosts == 0 then
      route_hosts = { "" } -- a prefix on any host
    end
    for _, host in ipairs(route_hosts) do
      if prefix then
        local list = prefixed[host] or {}
        list[#list + 1] = r
        prefixed[host] = list
      else
        hosts[host] = r
      end
    end
  end
  for _, list in pairs(prefixed) do
    table.sort(list, function(a, b) return #a.path_prefix > #b.path_prefix end)
  end
  return { hosts = hosts, prefixed = prefixed }
end

local function current()
  local version = routes_dict:get("version")
  if version ~= index.version then
    local decoded = decode_table(routes_dict:get("table") or '{"routes": []}')
    if decoded then
      index = { version = version, hosts = decoded.hosts, prefixed = decoded.prefixed }
    end
  end
  return index
end

local function find(host, uri)
  local t = current()
  local route = t.hosts[host]
  if route then
    return route
  end
  for _, key in ipairs({ host, "" }) do
    for _, r in ipairs(t.prefixed[key] or {}) do
      local p = r.path_prefix
      if uri == p or uri:sub(1, #p + 1) == p .. "/" then
        return r
      end
    end
  end
  return nil
end

-- The control plane's address and what visitors' scheme is (nginx_conf.py), for asking it
-- over a socket of our own (`ask_authz_directly`).
local api = { host = "127.0.0.1", port = 0, authz = "", scheme = "http" }

-- Load the table saved by the control plane (nginx start and reload: master process).
function M.init(path, api_host, api_port, authz_path, scheme)
  api = { host = api_host, port = tonumber(api_port), authz = authz_path, scheme = scheme }
  local file = io.open(path, "r")
  if not file then
    return
  end
  local blob = file:read("*a")
  file:close()
  if decode_table(blob) then
    routes_dict:set("table", blob)
    routes_dict:incr("version", 1, 0)
  end
end

local function without_prefix(route)
  -- the raw request line's target without the Space's prefix (never re-encoded)
  local p, raw = route.path_prefix, ngx.var.request_uri
  local rest
  if raw:sub(1, #p) == p then
    rest = raw:sub(#p + 1)
  else -- the client spelled the prefix differently (percent-encoded): go by the decoded path
    rest = ngx.var.uri:sub(#p + 1) .. (ngx.var.is_args or "") .. (ngx.var.args or "")
  end
  if rest == "" or rest:sub(1, 1) == "?" then
    rest = "/" .. rest
  end
  return rest
end

local AUTHZ_NOT_FORWARDED = {
  host = true, connection = true, ["keep-alive"] = true, ["proxy-connection"] = true,
  upgrade = true, te = true, ["transfer-encoding"] = true, ["content-length"] = true,
  ["x-forwarded-host"] = true, ["x-forwarded-proto"] = true, ["x-forwarded-for"] = true,
  ["x-forwarded-method"] = true, ["x-forwarded-uri"] = true, ["x-spaceport-space"] = true,
}

local function read_chunked(sock)
  local parts = {}
  while true do
    local size_line, err = sock:receive("*l")
    local size = size_line and tonumber(size_line:match("^%x+"), 16)
    if not size then
      return nil, err or "bad chunk"
    end
    if size == 0 then -- then trailers, if any, and the empty line that ends the message
      repeat
        local trailer, trailer_err = sock:receive("*l")
        if not trailer then
          return nil, trailer_err
        end
      until trailer == ""
      return table.concat(parts)
    end
    local chunk, chunk_err = sock:receive(size)
    if not chunk then
      return nil, chunk_err
    end
    parts[#parts + 1] = chunk
    sock:receive("*l")
  end
end

local AUTHZ_POOL_IDLE_MS = 4000 -- under uvicorn's 5 s keep-alive: the API closes none we reuse

local function read_response(sock)
  local status_line, err = sock:receive("*l")
  local status = status_line and tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then
    return nil, err or ("bad status line: " .. tostring(status_line))
  end
  local header, length, chunked, close = {}, nil, false, false
  while true do
    local line, line_err = sock:receive("*l")
    if not line then
      return nil, line_err
    end
    if line == "" then
      break
    end
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      local lower = name:lower()
      if lower == "content-length" then
        length = tonumber(value)
      elseif lower == "transfer-encoding" then
        chunked = value:lower():find("chunked", 1, true) ~= nil
      elseif lower == "connection" then
        close = value:lower():find("close", 1, true) ~= nil
      end
      local have = header[name]
      if have == nil then
        header[name] = value
      elseif type(have) == "table" then
        have[#have + 1] = value
      else
        header[name] = { have, value }
      end
    end
  end
  local body
  if chunked then
    body, err = read_chunked(sock)
  elseif length then
    body, err = sock:receive(length)
  elseif status == 204 or status == 304 then
    body = ""
  else
    body, err, close = sock:receive("*a"), nil, true -- delimited by the API closing it
  end
  if not body then
    return nil, err
  end
  return { status = status, header = header, body = body }, nil, close
end

local function authz_exchange(route)
  -- one question on a pooled keep-alive connection to the API; `reused`: the connection had
  -- served before (the API may have closed it meanwhile: worth one more try on another)
  local sock = ngx.socket.tcp()
  sock:settimeout(30000)
  local ok, err = sock:connect(api.host, api.port)
  if not ok then
    return nil, err, false
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  local host = ngx.var.http_host or ngx.var.host
  local lines = {
    "GET " .. api.authz .. " HTTP/1.1",
    "Host: " .. host,
    "X-Forwarded-Host: " .. host,
    "X-Forwarded-Proto: " .. api.scheme,
    "X-Forwarded-For: " .. ngx.var.remote_addr,
    "X-Spaceport-Space: " .. route.space_id,
    "X-Forwarded-Method: " .. ngx.req.get_method(),
    "X-Forwarded-Uri: " .. ngx.var.request_uri,
  }
  for name, value in pairs(ngx.req.get_headers(100)) do
    if not AUTHZ_NOT_FORWARDED[name:lower()] then
      for _, one in ipairs(type(value) == "table" and value or { value }) do
        lines[#lines + 1] = name .. ": " .. one
      end
    end
  end
  ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n")
  local res, close
  if ok then
    res, err, close = read_response(sock)
  end
  if res and not close then
    sock:setkeepalive(AUTHZ_POOL_IDLE_MS, 64)
  else
    sock:close()
  end
  return res, err, reused
end

local function ask_authz_directly(route)
  -- HTTP/2 requests can make no subrequest (Debian's lua-nginx-module 0.10.23 refuses
  -- ngx.location.capture for them): the same question over HTTP/1.1 connections of our own,
  -- with the visitor's headers, as the `/_spaceport/authz` location would send it
  local res, err, reused
  for _ = 1, 3 do
    res, err, reused = authz_exchange(route)
    if res or not reused then
      break
    end
  end
  return res, err
end

local function ask_authz(route)
  -- the control plane decides whether this visitor may reach a private Space: a 2xx lets the
  -- request through, any other answer goes back to the visitor as it is
  local res, err
  if ngx.req.http_version() == 2 then
    res, err = ask_authz_directly(route)
    if not res then
      ngx.log(ngx.ERR, "spaceport: authz for ", route.space_id, ": ", err)
      return ngx.exit(ngx.HTTP_BAD_GATEWAY)
    end
  else
    res = ngx.location.capture("/_spaceport/authz", {
      method = ngx.HTTP_GET,
      vars = {
        sp_authz_space = route.space_id,
        sp_authz_method = ngx.req.get_method(),
        sp_authz_uri = ngx.var.request_uri,
      },
    })
  end
  if res.status >= 200 and res.status < 300 then
    return
  end
  ngx.status = res.status
  for name, value in pairs(res.header) do
    local lower = name:lower()
    if lower ~= "transfer-encoding" and lower ~= "connection" and lower ~= "content-length" then
      ngx.header[name] = value
    end
  end
  ngx.print(res.body)
  return ngx.exit(ngx.HTTP_OK)
end

-- access phase of every public request: where does it go?
function M.access()
  local route = find(ngx.var.host, ngx.var.uri)
  if not route then
    return -- console, API, unknown app host: the control plane (its 404 page)
  end
  local var = ngx.var
  var.sp_space = route.space_id
  counters:incr(route.space_id .. "\tin_flight", 1, 0)
  local rel = ngx.var.uri
  if route.path_prefix then
    rel = rel:sub(#route.path_prefix + 1)
  end
  if rel:sub(1, #PLATFORM) == PLATFORM then
    return -- sign-in handshake, embed script: the control plane's, on the app's URL
  end
  if route.private then
    ask_authz(route)
  end
  if not route.live then
    return -- asleep, starting, building, down: the control plane's status page
  end
  -- no app ever sees a visitor's Spaceport token (gradio_client sends its user's along; the
  -- control plane's status page above does, to tell its owner how the Space is):
  -- every copy of the header goes when any copy holds one
  if ngx.var.http_authorization or ngx.var.http_x_hf_authorization then
    local all = ngx.req.get_headers(0)
    for _, name in ipairs(TOKEN_HEADERS) do
      local values = all[name]
      if type(values) == "string" then
        values = { values }
      end
      for _, value in ipairs(values or {}) do
        if value:sub(1, 10) == "Bearer sp_" then
          ngx.req.clear_header(name)
          break
        end
      end
    end
  end
  for name, value in pairs(route.set_request) do
    ngx.req.set_header(name, value)
  end
  if route.strip_prefix and route.path_prefix then
    var.sp_uri = without_prefix(route)
  end
  var.sp_pool = "spaceport_app"
  local ctx = ngx.ctx
  ctx.ip, ctx.port, ctx.response = route.ip, route.port, route.set_response
end

function M.balance()
  local ctx = ngx.ctx
  local ok, err = balancer.set_current_peer(ctx.ip, ctx.port)
  if not ok then
    ngx.log(ngx.ERR, "spaceport: cannot dial ", ctx.ip, ":", ctx.port, ": ", err)
    return ngx.exit(502)
  end
end

-- Apps answer cross-origin requests by Origin (Gradio's CORS headers: Access-Control-Allow-
-- Origin only when one was sent) but say `Vary: Origin` only then. A browser that fetched an
-- asset for the app's own page (no Origin) could reuse that copy for a <gradio-app> of the same
-- Space on another page, where it lacks the CORS header and fails: every app response varies
-- by Origin.
local function vary_by_origin()
  local vary = ngx.header["Vary"]
  if type(vary) == "table" then
    vary = table.concat(vary, ", ")
  end
  if vary == nil or vary == "" then
    ngx.header["Vary"] = "Origin"
    return
  end
  local low = string.lower(vary)
  if low:find("origin", 1, true) or low:find("*", 1, true) then
    return
  end
  ngx.header["Vary"] = vary .. ", Origin"
end

-- the README's headers (embedding policy, custom_headers) win over the app's own
function M.header_filter()
  local set = ngx.ctx.response
  if set then
    for name, value in pairs(set) do
      ngx.header[name] = value
    end
  end
  local space = ngx.var.sp_space
  if space ~= nil and space ~= "" then
    vary_by_origin()
  end
end

function M.log()
  local space = ngx.var.sp_space
  if space == nil or space == "" then
    return
  end
  counters:incr(space .. "\trequests", 1, 0)
  if ngx.status >= 500 then
    counters:incr(space .. "\terrors", 1, 0)
  end
  local took = tonumber(ngx.var.request_time) or 0
  counters:incr(space .. "\tsum", took, 0)
  for i, bound in ipairs(BUCKETS) do
    if took <= bound then
      counters:incr(space .. "\tb" .. i, 1, 0)
      break
    end
  end
  -- last: a reader that sees no request open sees this one's counts
  counters:incr(space .. "\tin_flight", -1, 0)
end

-- admin API (the private socket only) -------------------------------------------------------

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  local path = ngx.req.get_body_file()
  if not path then
    return ""
  end
  local file = io.open(path, "r")
  body = file:read("*a")
  file:close()
  return body
end

local function space_ids(decoded)
  local ids = {}
  for _, r in pairs(decoded.hosts) do ids[r.space_id] = true end
  for _, list in pairs(decoded.prefixed) do
    for _, r in ipairs(list) do ids[r.space_id] = true end
  end
  return ids
end

-- A Space that leaves the table (deleted, paused) leaves its counts behind with it: one made
-- again under the same id starts from zero, as a new Space's graphs and sleep timer expect.
-- (Its in-flight count stays: a request still running decrements it.)
local function forget_counts(before, after)
  for id in pairs(before) do
    if not after[id] then
      for _, field in ipairs({ "requests", "errors", "sum" }) do
        counters:delete(id .. "\t" .. field)
      end
      for i = 1, #BUCKETS do
        counters:delete(id .. "\tb" .. i)
      end
    end
  end
end

function M.admin_routes()
  local method = ngx.req.get_method()
  if method == "GET" then
    ngx.header["Content-Type"] = "application/json"
    ngx.header["X-Spaceport-Version"] = tostring(routes_dict:get("version") or 0)
    ngx.print(routes_dict:get("table") or '{"routes": []}')
    return
  end
  if method ~= "PUT" then
    return reply(405, { error = "GET or PUT" })
  end
  local blob = read_body()
  local ok, err = decode_table(blob)
  if not ok then
    return reply(400, { error = err })
  end
  local before = space_ids(current())
  local stored, set_err = routes_dict:set("table", blob)
  if not stored then
    return reply(507, { error = "route table does not fit the shared dict: " .. set_err })
  end
  local version = routes_dict:incr("version", 1, 0)
  forget_counts(before, space_ids(ok))
  return reply(200, { version = version })
end

function M.admin_traffic()
  local out = {}
  for _, key in ipairs(counters:get_keys(0)) do
    local space, field = key:match("^(.*)\t(.*)$")
    if space then
      local t = out[space]
      if not t then
        t = { requests = 0, errors = 0, in_flight = 0, sum = 0, buckets = {} }
        out[space] = t
      end
      local value = counters:get(key) or 0
      local bucket = field:match("^b(%d+)$")
      if bucket then
        t.buckets[tostring(BUCKETS[tonumber(bucket)])] = value
      else
        t[field] = value
      end
    end
  end
  return reply(200, { bounds = BUCKETS, spaces = out })
end

function M.admin_health(listen)
  return reply(200, { listen = listen, version = routes_dict:get("version") or 0 })
end

-- TLS (an https SPACEPORT_URL) --------------------------------------------------------------
-- The certificate table lives in shared memory like the routes and is replaced whole over the
-- admin socket (proxy/tls.py): a new or renewed certificate is served at the next handshake.
-- Each worker keeps the parsed certificates of the table's current version.

local parsed = { version = false, by_name = {} }

local function parsed_entry(name)
  local version = certs_dict:get("version")
  if version ~= parsed.version then
    parsed = { version = version, by_name = {} }
  end
  local entry = parsed.by_name[name]
  if entry ~= nil then
    return entry
  end
  entry = false
  local blob = certs_dict:get("c:" .. name)
  if blob then
    local ssl = require "ngx.ssl"
    local data = cjson.decode(blob)
    local cert, cert_err = ssl.parse_pem_cert(data and data.cert or "")
    local key, key_err = ssl.parse_pem_priv_key(data and data.key or "")
    if cert and key then
      entry = { cert = cert, key = key }
    else
      ngx.log(ngx.ERR, "spaceport: certificate ", name, ": ", cert_err or key_err)
    end
  end
  parsed.by_name[name] = entry
  return entry
end

-- ssl_certificate_by_lua: the exact host, else its wildcard, else the default (the console's)
function M.certificate()
  local ssl = require "ngx.ssl"
  local host = (ssl.server_name() or ""):lower()
  local entry = host ~= "" and parsed_entry(host)
  if not entry then
    local dot = host:find(".", 1, true)
    entry = dot and parsed_entry("*" .. host:sub(dot))
  end
  entry = entry or parsed_entry("default")
  if not entry then
    return -- nothing pushed yet: the config's placeholder
  end
  local ok, err = ssl.clear_certs()
  if ok then
    ok, err = ssl.set_cert(entry.cert)
  end
  if ok then
    ok, err = ssl.set_priv_key(entry.key)
  end
  if not ok then
    ngx.log(ngx.ERR, "spaceport: cannot serve the certificate for ", host, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
end

local ISSUING_PAGE = [[<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>Certificate being issued</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>This address's HTTPS certificate is being issued</h1>
<p><b>%s</b> is new here: its certificate is queued or being issued by the certificate
authority, which usually takes under a minute. Until then a browser can open this address over
HTTPS only with a security warning.</p>
<p>This page tries again every 5 seconds and takes you to <b>https://%s</b> once it is ready.
<a href="">Try again now</a>.</p></body></html>]]

local function html_escape(text)
  return (text:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function has_certificate(host)
  if certs_dict:get("c:" .. host) then
    return true
  end
  local dot = host:find(".", 1, true)
  return dot ~= nil and certs_dict:get("c:*" .. host:sub(dot)) ~= nil
end

-- the plain HTTP port beside HTTPS: a redirect to HTTPS, except for the console or a Space's
-- host whose first certificate is still queued or being issued: a browser can be shown no page
-- over HTTPS before a certificate it trusts exists, so this page says so here, and retries
function M.plain_http(suffix, console)
  local host = (ngx.var.host or ""):lower()
  if has_certificate(host) or (host ~= console and not find(host, ngx.var.uri)) then
    return ngx.redirect("https://" .. host .. suffix .. ngx.var.request_uri, 301)
  end
  ngx.status = 503
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  ngx.header["Retry-After"] = "5"
  ngx.header["Cache-Control"] = "no-store"
  local name = html_escape(host)
  ngx.print(string.format(ISSUING_PAGE, name, name .. html_escape(suffix)))
end

-- the plain HTTP port: /.well-known/acme-challenge/<token> while an order waits on it
function M.acme_challenge()
  local token = ngx.var.uri:match("^/%.well%-known/acme%-challenge/([%w_-]+)$")
  local answer = token and certs_dict:get("a:" .. token)
  if not answer then
    return ngx.exit(404)
  end
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(answer)
end

-- GET: the digest of the table served; PUT {"digest", "certs": {name: {cert, key}}}: replace it
function M.admin_certs()
  local method = ngx.req.get_method()
  if method == "GET" then
    return reply(200, { digest = certs_dict:get("digest") or "", version = certs_dict:get("version") or 0 })
  end
  if method ~= "PUT" then
    return reply(405, { error = "GET or PUT" })
  end
  local data = cjson.decode(read_body())
  if type(data) ~= "table" or type(data.certs) ~= "table" then
    return reply(400, { error = "not a certificate table: {\"digest\", \"certs\": {...}}" })
  end
  local ssl = require "ngx.ssl"
  for name, entry in pairs(data.certs) do
    local cert, err = ssl.parse_pem_cert(type(entry) == "table" and entry.cert or "")
    local key, key_err = ssl.parse_pem_priv_key(type(entry) == "table" and entry.key or "")
    if not cert or not key then
      return reply(400, { error = "certificate " .. name .. ": " .. tostring(err or key_err) })
    end
  end
  for _, key in ipairs(certs_dict:get_keys(0)) do
    if key:sub(1, 2) == "c:" and data.certs[key:sub(3)] == nil then
      certs_dict:delete(key)
    end
  end
  for name, entry in pairs(data.certs) do
    local ok, err = certs_dict:set("c:" .. name, cjson.encode(entry))
    if not ok then
      return reply(507, { error = "certificates do not fit the shared dict: " .. err })
    end
  end
  certs_dict:set("digest", tostring(data.digest or ""))
  local version = certs_dict:incr("version", 1, 0)
  return reply(200, { version = version })
end

-- PUT /challenges/<token> (body: the key authorization), DELETE when the order is done
function M.admin_challenges()
  local token = ngx.var.uri:match("^/challenges/([%w_-]+)$")
  if not token then
    return reply(404, { error = "/challenges/<token>" })
  end
  local method = ngx.req.get_method()
  if method == "PUT" then
    certs_dict:set("a:" .. token, read_body(), 3600)
  elseif method == "DELETE" then
    certs_dict:delete("a:" .. token)
  else
    return reply(405, { error = "PUT or DELETE" })
  end
  return reply(200, { token = token })
end

return M
