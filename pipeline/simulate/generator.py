"""Realistic Plug webhook bodies, generated purely (no I/O), reproducible by seed.

``Generator`` interleaves a few conversations at a time. Each one follows Plug's
life cycle: the customer writes, an automatic reply may go out, the attendance
starts, customer and operator exchange messages (every outbound message gets a
DeliveryCallback, or a delivery error, then status callbacks), and the
attendance finishes with the whole transcript. Instances disconnect now and then.
Bodies use Plug's own spellings (``momment``, ``departament``, ``"operatorReport "``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.webhooks import Webhook

Body = dict[str, Any]
Item = tuple[Webhook, bytes]

# Fixed rather than "now", so that a seed alone fixes every byte.
DEFAULT_START_MS = 1_735_736_400_000  # 2025-01-01 10:00 in Brasília

_FIRST_NAMES = (
    "Ana", "Beatriz", "Bruna", "Camila", "Carla", "Daniela", "Fernanda", "Gabriela", "Juliana",
    "Larissa", "Letícia", "Mariana", "Patrícia", "Renata", "Vitória", "André", "Bruno", "Carlos",
    "Diego", "Eduardo", "Felipe", "Gustavo", "João", "Lucas", "Marcos", "Mateus", "Paulo",
    "Rafael", "Rodrigo", "Thiago", "Vinícius", "Luíza", "Márcia", "Sérgio", "Antônio",
)  # fmt: skip
_SURNAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Araújo", "Barbosa",
    "Cardoso", "Rocha", "Dias", "Nascimento", "Moreira", "Conceição", "Gonçalves",
)  # fmt: skip
_DDDS = (11, 12, 19, 21, 24, 27, 31, 34, 41, 43, 44, 47, 48, 51, 54, 61, 62, 65, 67, 71, 79, 81,
         82, 84, 85, 91, 92, 98)  # fmt: skip
_DEPARTMENTS = ("Suporte", "Financeiro", "Vendas", "Comercial", "Cobrança", "Pós-venda")
_GROUP_NAMES = ("Condomínio Bela Vista", "Equipe Loja Centro", "Pedidos Atacado", "Clientes VIP")
_INBOUND_TEXTS = (
    "Olá, bom dia!", "Boa tarde, tudo bem?", "Gostaria de saber o status do meu pedido",
    "Meu boleto venceu, consigo a segunda via?", "Vocês abrem no sábado?",
    "O produto chegou com defeito 😕", "Qual o prazo de entrega para Curitiba?",
    "Já fiz o pagamento via Pix", "Pode me mandar o link de novo?", "Obrigado! 🙏",
    "Não recebi o código de rastreio", "Quero cancelar a assinatura", "Ok, aguardo",
    "Consegue me ligar?", "Perfeito, muito obrigada", "Qual o valor do frete?",
)  # fmt: skip
_OUTBOUND_TEXTS = (
    "Olá! Em que posso ajudar?", "Só um momento, vou verificar", "Seu pedido já foi enviado",
    "Segue o link para pagamento", "O prazo é de 3 a 5 dias úteis", "Pode me informar o CPF?",
    "Já encaminhei para o setor responsável", "Mais alguma dúvida?",
    "Agradecemos o contato! 😊", "Estou gerando a segunda via do boleto",
)  # fmt: skip
_AUTOMATIC_TEXTS = (
    "Olá! Recebemos sua mensagem e logo um atendente vai falar com você.",
    "Nosso horário de atendimento é de segunda a sexta, das 8h às 18h.",
    "só um momento",
)
_REPORTS = ("Cliente atendido", "Segunda via enviada", "Pedido reenviado", "Dúvida resolvida", "")
_RATINGS = ("Ótimo atendimento", "Demorou um pouco", "Resolveram meu problema", "")
_EMOJIS = ("👍", "❤️", "😂", "🙏", "😮", "")
_DELIVERY_ERRORS = (
    "Phone number does not exist",
    "Timeout on send message",
    "Failed to send message",
    "Invalid media url",
    "You don't have permission to send a message to this contact",
)
_DOCUMENTS = (
    ("boleto.pdf", "application/pdf"),
    ("nota-fiscal.pdf", "application/pdf"),
    ("comprovante.pdf", "application/pdf"),
    ("planilha.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)
_PLACES = (
    ("Avenida Paulista, 1578 - Bela Vista, São Paulo - SP", -23.561414, -46.655881),
    ("Rua XV de Novembro, 700 - Centro, Curitiba - PR", -25.42778, -49.27306),
    ("Avenida Atlântica, 1702 - Copacabana, Rio de Janeiro - RJ", -22.96718, -43.17836),
    ("Avenida Brasil, 1200 - Zona 03, Maringá - PR", -23.42528, -51.93861),
)
_LEGACY_CATEGORIES = (
    {"color": "#2ECC71", "id": "cat-suporte", "name": "Suporte"},
    {"color": "#E74C3C", "id": "cat-reclamacao", "name": "Reclamação"},
    {"color": "#3498DB", "id": "cat-venda", "name": "Venda"},
)
_CATEGORY_ITEMS = (
    ("cat-motivo", "Motivo", "#9B59B6", "item-duvida", "Dúvida"),
    ("cat-motivo", "Motivo", "#9B59B6", "item-troca", "Troca"),
    ("cat-motivo", "Motivo", "#9B59B6", "item-pagamento", "Pagamento"),
    ("cat-resultado", "Resultado", "#1ABC9C", "item-resolvido", "Resolvido"),
    ("cat-resultado", "Resultado", "#1ABC9C", "item-pendente", "Pendente"),
    ("cat-padrao", "Padrão", "#DDDDDD", "item-geral", "Geral"),
)
# Outbound content kinds and the statuses WhatsApp reports for each, in order.
_STATUS_CHAIN = ("SENT", "RECEIVED", "READ")
_AUDIO_STATUS_CHAIN = ("SENT", "RECEIVED", "READ", "PLAYED")


@dataclass(frozen=True)
class Instance:
    instance_id: str
    phone: str


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str
    lid: str
    photo: str


@dataclass
class _Outbound:
    """An outbound message still waiting for some of its status callbacks."""

    message_id: str
    statuses: list[str]


@dataclass
class _Conversation:
    number: int
    instance: Instance
    chat_phone: str
    chat_name: str
    is_group: bool
    members: list[Customer]
    photo: str
    department: str
    operator: str
    request_time: int = 0
    start_time: int = 0
    chat: dict[str, Body] = field(default_factory=dict)
    awaiting: list[_Outbound] = field(default_factory=list)


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}X}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("0123456789", k=n))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"


def _mobile(rng: random.Random) -> str:
    return f"55{rng.choice(_DDDS)}9{_digits(rng, 8)}"


def _photo(rng: random.Random) -> str:
    return f"https://pps.whatsapp.net/v/t61.24694-24/{_digits(rng, 9)}_n.jpg"


def _media(rng: random.Random, ext: str) -> str:
    return f"https://storage.z-api.io/instances/{_hex(rng, 12).lower()}.{ext}"


def make_pools(seed: int, instances: int, customers: int) -> tuple[list[Instance], list[Customer]]:
    """The tenant's connected numbers and its customers, fixed by the seed."""
    rng = random.Random(f"{seed}/pools")
    inst = [Instance(_hex(rng, 32), _mobile(rng)) for _ in range(instances)]
    seen: set[str] = set()
    people: list[Customer] = []
    while len(people) < customers:
        phone = _mobile(rng)
        if phone not in seen:
            seen.add(phone)
            people.append(Customer(_name(rng), phone, f"{_digits(rng, 14)}@lid", _photo(rng)))
    return inst, people


class _Factory:
    """Builds bodies from one random stream and one clock; shared by stream and helpers."""

    def __init__(self, rng: random.Random, start_ms: int, max_step_ms: int = 400) -> None:
        self.rng = rng
        self.now = start_ms
        self.max_step_ms = max_step_ms

    def tick(self, low: int, high: int) -> int:
        self.now += self.rng.randint(low, high)
        return self.now

    def conversation(
        self,
        number: int,
        instances: list[Instance],
        customers: list[Customer],
        group: bool,
        operators: list[str] | None = None,
    ) -> _Conversation:
        rng = self.rng
        instance = rng.choice(instances)
        if group:
            members = rng.sample(customers, rng.randint(2, 4))
            phone = f"1203630{_digits(rng, 11)}-group"
            name = rng.choice(_GROUP_NAMES)
        else:
            members = [rng.choice(customers)]
            phone, name = members[0].phone, members[0].name
        photo = _photo(rng) if group else members[0].photo
        return _Conversation(
            number=number,
            instance=instance,
            chat_phone=phone,
            chat_name=name,
            is_group=group,
            members=members,
            photo=photo,
            department=rng.choice(_DEPARTMENTS),
            operator=rng.choice(operators) if operators else _name(rng),
        )

    def inbound(self, conv: _Conversation) -> Body:
        """A ReceivedCallback from the customer (or a group member); added to the chat."""
        rng = self.rng
        sender = rng.choice(conv.members)
        message_id = _hex(rng, 32) if rng.random() < 0.5 else "3A" + _hex(rng, 18)
        body: Body = {
            "isStatusReply": False,
            "senderLid": sender.lid,
            "connectedPhone": conv.instance.phone,
            "waitingMessage": False,
            "isEdit": False,
            "isGroup": conv.is_group,
            "isNewsletter": False,
            "instanceId": conv.instance.instance_id,
            "messageId": message_id,
            "phone": conv.chat_phone,
            "fromMe": False,
            "momment": self.now,
            "status": "RECEIVED",
            "chatName": conv.chat_name,
            "senderPhoto": sender.photo,
            "senderName": sender.name,
            "participantPhone": sender.phone if conv.is_group else None,
            "participantLid": sender.lid if conv.is_group else None,
            "photo": conv.photo,
            "broadcast": False,
            "forwarded": rng.random() < 0.03,
            "type": "ReceivedCallback",
        }
        body.update(self._inbound_content(conv, sender))
        conv.chat[message_id] = body
        return body

    def _inbound_content(self, conv: _Conversation, sender: Customer) -> Body:
        rng = self.rng
        roll = rng.random()
        if roll < 0.08 and conv.chat:
            target_id = rng.choice(list(conv.chat))
            target = conv.chat[target_id]
            return {
                "reaction": {
                    "value": rng.choice(_EMOJIS),
                    "time": self.now,
                    "reactionBy": sender.phone,
                    "referencedMessage": {
                        "messageId": target_id,
                        "fromMe": target["fromMe"],
                        "phone": conv.chat_phone,
                        "participant": target.get("participantPhone"),
                    },
                }
            }
        if roll < 0.20:
            return {
                "image": {
                    "mimeType": "image/jpeg",
                    "imageUrl": _media(rng, "jpeg"),
                    "thumbnailUrl": _media(rng, "jpeg"),
                    "downloadError": None,
                    "caption": rng.choice(("", "Olha isso", "Segue a foto")),
                    "width": rng.choice((720, 1080, 1280)),
                    "height": rng.choice((960, 1600, 720)),
                    "viewOnce": False,
                }
            }
        if roll < 0.32:
            return {"audio": self._audio()}
        if roll < 0.38:
            file_name, mime = rng.choice(_DOCUMENTS)
            return {
                "document": {
                    "documentUrl": _media(rng, file_name.rsplit(".", 1)[1]),
                    "mimeType": mime,
                    "title": file_name.rsplit(".", 1)[0],
                    "pageCount": rng.randint(1, 6),
                    "fileName": file_name,
                }
            }
        if roll < 0.42:
            address, lat, lon = rng.choice(_PLACES)
            return {
                "location": {
                    "longitude": lon,
                    "latitude": lat,
                    "address": address,
                    "url": f"https://maps.google.com/maps?q={lat},{lon}",
                }
            }
        return {"text": {"message": rng.choice(_INBOUND_TEXTS)}}

    def _audio(self) -> Body:
        return {
            "ptt": True,
            "seconds": self.rng.randint(2, 90),
            "audioUrl": _media(self.rng, "ogg"),
            "mimeType": "audio/ogg; codecs=opus",
            "viewOnce": False,
        }

    def outbound(self, conv: _Conversation, *, automatic: bool) -> tuple[Webhook, Body]:
        """An operator's (or automatic) send: its transcript entry and its delivery callback."""
        rng = self.rng
        message_id = "3EB0" + _hex(rng, 16)
        content: Body
        chain: tuple[str, ...] = _STATUS_CHAIN
        roll = 1.0 if automatic else rng.random()
        if roll < 0.08:
            content = {"audio": self._audio()}
            chain = _AUDIO_STATUS_CHAIN
        elif roll < 0.14:
            file_name, mime = rng.choice(_DOCUMENTS)
            url = _media(rng, file_name.rsplit(".", 1)[1])
            content = {"document": {"documentUrl": url, "mimeType": mime, "fileName": file_name}}
        else:
            texts = _AUTOMATIC_TEXTS if automatic else _OUTBOUND_TEXTS
            content = {"text": {"message": rng.choice(texts)}}
        entry: Body = {
            "fromMe": True,
            "isAutomaticMessage": automatic,
            "messageId": message_id,
            "momment": self.now,
            "phone": conv.chat_phone,
            "status": "PENDING",
            **content,
        }
        conv.chat[message_id] = entry
        delivery: Body = {
            "phone": conv.chat_phone,
            "zaapId": _hex(rng, 32),
            "messageId": message_id,
            "type": "DeliveryCallback",
            "instanceId": conv.instance.instance_id,
            "momment": self.now,
        }
        if rng.random() < 0.05:
            delivery["error"] = rng.choice(_DELIVERY_ERRORS)
            if rng.random() < 0.3:
                delivery["errorCode"] = "SHADOW_BAN"
            return Webhook.MESSAGE_DELIVERY_ERROR, delivery
        # Some messages are never read (or never reach the phone): cut the chain short.
        reached = rng.choices((1, 2, len(chain)), weights=(1, 2, 7))[0]
        conv.awaiting.append(_Outbound(message_id, list(chain[:reached])))
        return Webhook.SENDING_MESSAGE, delivery

    def status(self, conv: _Conversation) -> Body:
        """The next status callback for the oldest outbound message still awaiting one."""
        rng = self.rng
        first = conv.awaiting[0]
        status = first.statuses[0]
        # Phones often confirm several messages at once (one RECEIVED/READ for a burst).
        batch = [first]
        if rng.random() < 0.5:
            batch += [o for o in conv.awaiting[1:] if o.statuses[0] == status]
        for outbound in batch:
            outbound.statuses.pop(0)
            conv.chat[outbound.message_id]["status"] = status
        conv.awaiting = [o for o in conv.awaiting if o.statuses]
        wire = status
        if status == "READ":
            wire = rng.choices(("READ", "MESSAGE_READ", "READ-SELF"), weights=(90, 4, 6))[0]
        body: Body = {
            "instanceId": conv.instance.instance_id,
            "status": wire,
            "ids": [o.message_id for o in batch],
            "momment": self.now,
            "phone": conv.chat_phone,
            "type": "MessageStatusCallback",
        }
        if rng.random() < 0.9:  # the 2022 fields; older senders omit them
            body["phoneDevice"] = 0
            body["isGroup"] = conv.is_group
        return body

    def _customer(self, conv: _Conversation) -> Body:
        return {"name": conv.chat_name, "phone": conv.chat_phone}

    def start_attendance(self, conv: _Conversation) -> Body:
        # The operator picks the ticket up a moment before Plug sends the webhook.
        conv.start_time = max(conv.request_time, self.now - self.rng.randint(200, 1500))
        attendance = {
            "attendanceNumber": conv.number,
            "customer": self._customer(conv),
            "departament": conv.department,
            "operator": conv.operator,
            "momment": self.now,
            "startTime": conv.start_time,
            "status": "PROGRESS",
        }
        return {"attendance": attendance, "chat": conv.chat}

    def finish_attendance(self, conv: _Conversation) -> Body:
        rng = self.rng
        attendance: Body = {}
        # Which category form appears depends on the tenant's panel set-up.
        form = rng.choices(("legacy", "list", "both", "none"), weights=(35, 35, 15, 15))[0]
        if form in ("legacy", "both"):
            attendance["attendanceCategory"] = dict(rng.choice(_LEGACY_CATEGORIES))
        if form in ("list", "both"):
            picked = rng.sample(_CATEGORY_ITEMS, rng.randint(1, 3))
            attendance["attendanceCategories"] = [
                {"categoryId": c, "categoryName": cn, "color": col, "itemId": i, "itemName": iname}
                for c, cn, col, i, iname in picked
            ]
        attendance.update(
            {
                "attendanceNumber": conv.number,
                "customer": self._customer(conv),
                "departament": conv.department,
                "endTime": self.now,
                "finishBy": conv.operator,
                "operatorReport ": rng.choice(_REPORTS),
                "ratingObservation": rng.choice(_RATINGS),
                "requestTime": conv.request_time,
                "startTime": conv.start_time or conv.request_time,
                "status": "FINISH",
            }
        )
        return {"attendance": attendance, "chat": conv.chat}

    def disconnected(self, instance: Instance) -> Body:
        body: Body = {
            "momment": self.now // 1000,  # seconds, as in Plug's example
            "error": "Device has been disconnected",
            "disconnected": True,
            "type": "DisconnectedCallback",
        }
        if self.rng.random() < 0.9:
            body["instanceId"] = instance.instance_id
        return body


class Generator:
    """An endless, reproducible stream of ``(Webhook, body)`` as Plug would send them."""

    def __init__(
        self,
        seed: int,
        *,
        start_ms: int = DEFAULT_START_MS,
        instances: int = 3,
        customers: int = 500,
        parallel: int = 4,
        group_share: float = 0.1,
        mean_step_ms: float = 200.0,
        operators: int = 12,
        transfer_share: float = 0.05,
    ) -> None:
        """``mean_step_ms`` is the simulated time between webhooks; 1000/rate tracks real time.

        ``operators`` is the tenant's team: each attendance goes to one of them, and
        ``transfer_share`` of attendances are finished by another one than started them.
        """
        if parallel < 1 or instances < 1 or customers < 1 or operators < 1:
            raise ValueError("instances, customers, operators and parallel must be at least 1")
        self.seed = seed
        self.instances, self.customers = make_pools(seed, instances, customers)
        team_rng = random.Random(f"{seed}/operators")
        self.operators = sorted({_name(team_rng) for _ in range(operators * 4)})[:operators]
        self._transfer_share = transfer_share
        self._rng = random.Random(f"{seed}/stream")
        self._factory = _Factory(self._rng, start_ms, max(1, round(2 * mean_step_ms - 1)))
        # Helpers draw from their own streams so calling them never shifts the main one.
        self._helpers = {
            name: _Factory(random.Random(f"{seed}/{name}"), start_ms)
            for name in ("receive", "status", "finish")
        }
        self._parallel = parallel
        self._group_share = group_share
        self._next_number = self._rng.randint(1000, 9000)
        self._active: list[Iterator[tuple[Webhook, Body]]] = []
        self._busy: set[str] = set()
        self._until_disconnect = self._rng.randint(50, 250)

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        webhook, body = self._next_body()
        return webhook, orjson.dumps(body)

    def take(self, n: int) -> list[Item]:
        return [next(self) for _ in range(n)]

    def _next_body(self) -> tuple[Webhook, Body]:
        # Attendance bodies share the live ``chat`` dict: encode before the next call.
        factory = self._factory
        factory.tick(1, factory.max_step_ms)
        self._until_disconnect -= 1
        if self._until_disconnect <= 0:
            self._until_disconnect = self._rng.randint(100, 400)
            instance = self._rng.choice(self.instances)
            return Webhook.WHEN_DISCONNECTING, factory.disconnected(instance)
        while True:
            while len(self._active) < self._parallel:
                self._active.append(self._conversation())
            index = self._rng.randrange(len(self._active))
            try:
                return next(self._active[index])
            except StopIteration:
                del self._active[index]

    def _conversation(self) -> Iterator[tuple[Webhook, Body]]:
        rng, factory = self._rng, self._factory
        free = [c for c in self.customers if c.phone not in self._busy]
        group = rng.random() < self._group_share or len(free) < 4
        conv = factory.conversation(
            self._next_number, self.instances, free or self.customers, group, self.operators
        )
        self._next_number += 1
        self._busy.update(m.phone for m in conv.members)
        return self._script(conv, rng.randint(3, 12))

    def _script(self, conv: _Conversation, turns: int) -> Iterator[tuple[Webhook, Body]]:
        """One conversation; each yield resumes at the generator's current time."""
        rng, factory = self._rng, self._factory
        conv.request_time = factory.now
        yield Webhook.RECEIVE_MESSAGE, factory.inbound(conv)
        if rng.random() < 0.6:
            yield factory.outbound(conv, automatic=True)
        yield Webhook.START_ATTENDANCE, factory.start_attendance(conv)
        for _ in range(turns):
            if conv.awaiting and rng.random() < 0.45:
                yield Webhook.MESSAGE_STATUS, factory.status(conv)
            elif rng.random() < 0.5:
                yield Webhook.RECEIVE_MESSAGE, factory.inbound(conv)
            else:
                yield factory.outbound(conv, automatic=False)
        while conv.awaiting:
            yield Webhook.MESSAGE_STATUS, factory.status(conv)
        if len(self.operators) > 1 and rng.random() < self._transfer_share:
            conv.operator = rng.choice([o for o in self.operators if o != conv.operator])
        yield Webhook.FINISH_ATTENDANCE, factory.finish_attendance(conv)
        self._busy.difference_update(m.phone for m in conv.members)

    # Helpers for benchmarks: one body of a given shape, deterministic for the seed.

    def receive_message_body(self, size_hint: int = 1024) -> bytes:
        """A text ReceivedCallback padded to about ``size_hint`` bytes."""
        factory = self._helpers["receive"]
        factory.tick(1, 400)
        conv = factory.conversation(1, self.instances, self.customers, group=False)
        body = factory.inbound(conv)
        for key in ("reaction", "image", "audio", "document", "location"):
            body.pop(key, None)
        body["text"] = {"message": ""}
        room = size_hint - len(orjson.dumps(body))
        words: list[str] = []
        while room > 0:
            word = factory.rng.choice(_INBOUND_TEXTS)
            words.append(word)
            room -= len(word.encode()) + 1
        body["text"]["message"] = " ".join(words)
        return orjson.dumps(body)

    def message_status_body(self) -> bytes:
        """A MessageStatusCallback for one freshly sent message."""
        factory = self._helpers["status"]
        factory.tick(1, 400)
        conv = factory.conversation(1, self.instances, self.customers, group=False)
        factory.outbound(conv, automatic=False)
        if not conv.awaiting:  # the send failed; statuses only follow successful ones
            conv.awaiting.append(_Outbound(next(iter(conv.chat)), ["SENT"]))
        skip = factory.rng.randrange(len(conv.awaiting[0].statuses))
        del conv.awaiting[0].statuses[:skip]
        return orjson.dumps(factory.status(conv))

    def finish_attendance_body(self, n_messages: int) -> bytes:
        """A finish-attendance whose ``chat`` holds ``n_messages`` messages."""
        factory = self._helpers["finish"]
        factory.tick(1000, 5000)
        rng = factory.rng
        conv = factory.conversation(self._next_number, self.instances, self.customers, group=False)
        conv.request_time = factory.now
        conv.start_time = factory.now + 1000
        while len(conv.chat) < n_messages:
            factory.tick(500, 30_000)
            if rng.random() < 0.5:
                factory.inbound(conv)
            else:
                factory.outbound(conv, automatic=False)
            while conv.awaiting:
                factory.status(conv)
        factory.tick(1000, 5000)
        return orjson.dumps(factory.finish_attendance(conv))
