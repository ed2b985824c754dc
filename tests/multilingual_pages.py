"""News-style article paragraphs and site furniture in twelve languages, for the cleaning property tests.

The paragraphs were written for these tests (short news reports in each language's ordinary prose,
no text copied from any site); the furniture lines use the labels sites in that language print.
"""
from __future__ import annotations

PARAGRAPHS: dict[str, list[str]] = {
    "en": [
        "The city council voted on Tuesday to expand the bus network, adding four routes that will serve the northern suburbs from next spring, officials said.",
        "Fares will stay at their current level for at least a year, the mayor told reporters, although the plan still needs approval from the regional transport authority.",
        "Residents of the new estates had complained for years that the nearest stop was a thirty-minute walk away, and a petition last autumn gathered more than six thousand signatures.",
        "Opposition members said the council had not explained how the extra drivers would be hired, and asked for a full budget to be published before the vote in March.",
    ],
    "de": [
        "Der Stadtrat hat am Dienstag beschlossen, das Busnetz um vier Linien zu erweitern, die ab dem kommenden Frühjahr die nördlichen Vororte anbinden sollen.",
        "Die Fahrpreise bleiben nach Angaben der Bürgermeisterin mindestens ein Jahr lang unverändert, allerdings muss der regionale Verkehrsverbund dem Plan noch zustimmen.",
        "Bewohner der neuen Siedlungen hatten sich jahrelang darüber beklagt, dass die nächste Haltestelle eine halbe Stunde Fußweg entfernt liegt, und im Herbst Unterschriften gesammelt.",
        "Die Opposition kritisierte, die Verwaltung habe nicht erklärt, wie die zusätzlichen Fahrer gewonnen werden sollen, und verlangte einen vollständigen Haushaltsplan vor der Abstimmung.",
    ],
    "es": [
        "El ayuntamiento aprobó el martes ampliar la red de autobuses con cuatro nuevas líneas que darán servicio a los barrios del norte a partir de la próxima primavera.",
        "Las tarifas se mantendrán al menos durante un año, según explicó la alcaldesa a los periodistas, aunque el plan todavía necesita el visto bueno del consorcio regional de transporte.",
        "Los vecinos de las nuevas urbanizaciones llevaban años quejándose de que la parada más cercana estaba a media hora a pie, y el otoño pasado reunieron miles de firmas.",
        "La oposición reprochó al gobierno municipal que no haya explicado cómo contratará a los conductores adicionales y pidió que se publique el presupuesto completo antes de la votación.",
    ],
    "fr": [
        "Le conseil municipal a voté mardi l'extension du réseau de bus, avec quatre nouvelles lignes qui desserviront les quartiers nord à partir du printemps prochain.",
        "Les tarifs resteront inchangés pendant au moins un an, a précisé la maire devant la presse, même si le projet doit encore être approuvé par l'autorité régionale des transports.",
        "Les habitants des nouveaux lotissements se plaignaient depuis des années que l'arrêt le plus proche se trouvait à une demi-heure de marche, et une pétition a réuni des milliers de signatures.",
        "L'opposition a reproché à la municipalité de ne pas avoir expliqué comment seraient recrutés les chauffeurs supplémentaires et réclame la publication du budget avant le vote.",
    ],
    "pt": [
        "A câmara municipal aprovou na terça-feira a ampliação da rede de autocarros, com quatro novas linhas que vão servir os bairros do norte a partir da próxima primavera.",
        "As tarifas vão manter-se inalteradas durante pelo menos um ano, disse a presidente da câmara aos jornalistas, embora o plano ainda precise da aprovação da autoridade regional de transportes.",
        "Os moradores das novas urbanizações queixavam-se há anos de que a paragem mais próxima ficava a meia hora a pé, e um abaixo-assinado reuniu milhares de assinaturas no outono.",
        "A oposição criticou o executivo por não ter explicado como vai contratar os motoristas adicionais e pediu que o orçamento completo seja publicado antes da votação.",
    ],
    "it": [
        "Il consiglio comunale ha approvato martedì l'ampliamento della rete degli autobus, con quattro nuove linee che serviranno i quartieri a nord a partire dalla prossima primavera.",
        "Le tariffe resteranno invariate per almeno un anno, ha spiegato la sindaca ai giornalisti, anche se il piano deve ancora ottenere il via libera dell'agenzia regionale dei trasporti.",
        "Gli abitanti dei nuovi quartieri si lamentavano da anni che la fermata più vicina fosse a mezz'ora di cammino, e in autunno una petizione aveva raccolto migliaia di firme.",
        "L'opposizione ha accusato la giunta di non aver chiarito come verranno assunti gli autisti in più e ha chiesto di pubblicare il bilancio completo prima del voto.",
    ],
    "ru": [
        "Городской совет во вторник проголосовал за расширение автобусной сети: четыре новых маршрута начнут обслуживать северные районы со следующей весны.",
        "Стоимость проезда не изменится как минимум в течение года, сообщила журналистам мэр, однако план ещё должно одобрить региональное транспортное управление.",
        "Жители новых микрорайонов несколько лет жаловались, что до ближайшей остановки полчаса пешком, а осенью их петиция собрала несколько тысяч подписей.",
        "Депутаты от оппозиции заявили, что администрация так и не объяснила, где возьмёт дополнительных водителей, и потребовали опубликовать полный бюджет до голосования.",
    ],
    "pl": [
        "Rada miasta zdecydowała we wtorek o rozbudowie sieci autobusowej o cztery nowe linie, które od przyszłej wiosny obsłużą północne dzielnice.",
        "Ceny biletów pozostaną bez zmian co najmniej przez rok, powiedziała dziennikarzom prezydent miasta, choć plan musi jeszcze zatwierdzić regionalny zarząd transportu.",
        "Mieszkańcy nowych osiedli od lat skarżyli się, że do najbliższego przystanku mają pół godziny pieszo, a jesienią pod petycją podpisało się kilka tysięcy osób.",
        "Radni opozycji zarzucili władzom, że nie wyjaśniły, skąd wezmą dodatkowych kierowców, i zażądali opublikowania pełnego budżetu przed głosowaniem.",
    ],
    "tr": [
        "Belediye meclisi salı günü otobüs ağının genişletilmesini onayladı; dört yeni hat gelecek bahardan itibaren kuzeydeki mahallelere hizmet verecek.",
        "Belediye başkanı gazetecilere yaptığı açıklamada ücretlerin en az bir yıl boyunca değişmeyeceğini söyledi, ancak planın bölgesel ulaşım kurumundan da onay alması gerekiyor.",
        "Yeni sitelerde oturanlar yıllardır en yakın durağın yarım saatlik yürüme mesafesinde olduğundan şikâyet ediyordu ve sonbaharda başlatılan imza kampanyası binlerce destek topladı.",
        "Muhalefet üyeleri, yönetimin ek şoförleri nasıl işe alacağını açıklamadığını belirterek oylamadan önce bütçenin tamamının yayımlanmasını istedi.",
    ],
    "id": [
        "Dewan kota pada hari Selasa menyetujui perluasan jaringan bus dengan empat rute baru yang akan melayani kawasan utara mulai musim semi mendatang.",
        "Tarif tidak akan berubah setidaknya selama satu tahun, kata wali kota kepada wartawan, meskipun rencana itu masih memerlukan persetujuan otoritas transportasi daerah.",
        "Warga perumahan baru sudah bertahun-tahun mengeluh bahwa halte terdekat berjarak setengah jam berjalan kaki, dan petisi mereka tahun lalu mengumpulkan ribuan tanda tangan.",
        "Anggota oposisi menilai pemerintah kota belum menjelaskan cara merekrut sopir tambahan dan meminta anggaran lengkap diumumkan sebelum pemungutan suara.",
    ],
    "zh": [
        "市议会周二投票通过扩建公交网络的计划，四条新线路将从明年春天起服务北部郊区，官员表示新线路将大大缩短居民的通勤时间。",
        "市长对记者说，票价至少在一年内保持不变，不过这一计划仍需获得地区交通管理部门的批准，预计审批将在今年年底前完成。",
        "新建小区的居民多年来一直抱怨最近的车站要步行半个小时，去年秋天他们发起的请愿活动收集了六千多个签名。",
        "反对派议员表示，市政府没有说明将如何招聘更多司机，并要求在三月投票之前公布完整的预算方案。",
    ],
    "ar": [
        "صوّت المجلس البلدي يوم الثلاثاء على توسيع شبكة الحافلات بإضافة أربعة خطوط جديدة ستخدم الأحياء الشمالية ابتداءً من الربيع المقبل، وفق ما قال مسؤولون.",
        "وقالت رئيسة البلدية للصحفيين إن أسعار التذاكر ستبقى على حالها لمدة عام على الأقل، غير أن الخطة ما زالت تحتاج إلى موافقة هيئة النقل الإقليمية.",
        "وكان سكان الأحياء الجديدة يشتكون منذ سنوات من أن أقرب محطة تبعد نصف ساعة سيرًا على الأقدام، وجمعت عريضتهم في الخريف الماضي آلاف التوقيعات.",
        "وانتقد أعضاء المعارضة الإدارة لأنها لم توضح كيف ستوظف السائقين الإضافيين، وطالبوا بنشر الميزانية كاملة قبل التصويت.",
    ],
}

# Furniture lines a site in that language prints around and inside a story: each must be cut.
FURNITURE: dict[str, list[str]] = {
    "en": ["ALSO READ: Storm closes airport for a second day", "Share this story on WhatsApp", "Advertisement",
           "Follow us on Telegram for breaking news", "Comments"],
    "de": ["Lesen Sie auch: Sturm legt Flughafen den zweiten Tag lahm", "Teilen mit:", "Anzeige",
           "Zum Newsletter anmelden", "Kommentare"],
    "es": ["Lea también: Una tormenta cierra el aeropuerto por segundo día", "Compartir en Facebook", "Publicidad",
           "Síguenos en Telegram, Instagram, Facebook y Twitter", "Comentarios"],
    "fr": ["À lire aussi : Une tempête ferme l'aéroport pour le deuxième jour", "Partager sur Facebook", "Publicité",
           "Suivez-nous sur Instagram", "Commentaires"],
    "pt": ["Leia também: Tempestade fecha aeroporto pelo segundo dia", "Compartilhe no WhatsApp", "Publicidade",
           "Siga-nos no Instagram", "Comentários"],
    "it": ["Leggi anche: Tempesta chiude l'aeroporto per il secondo giorno", "Condividi su Facebook", "Pubblicità",
           "Seguici su Telegram", "Commenti"],
    "ru": ["Читайте также: Шторм второй день не даёт открыть аэропорт", "Поделиться в Telegram", "Реклама",
           "Подписывайтесь на наш канал в Telegram", "Комментарии"],
    "pl": ["Czytaj też: Burza drugi dzień paraliżuje lotnisko", "Udostępnij na Facebooku", "Reklama",
           "Obserwuj nas na Facebooku i Instagramie", "Komentarze"],
    "tr": ["İlgili haberler: Fırtına havalimanını ikinci gün de kapattı", "Paylaş: Facebook Twitter", "Reklam",
           "Bizi Instagram'da takip edin", "Yorumlar"],
    "id": ["Baca juga: Badai tutup bandara untuk hari kedua", "Bagikan artikel ini", "Iklan",
           "Ikuti kami di Instagram dan Telegram", "Komentar"],
    "zh": ["相关阅读：暴风雨连续第二天关闭机场", "分享到微信", "广告", "关注我们的微信公众号", "评论"],
    "ar": ["اقرأ أيضا: عاصفة تغلق المطار لليوم الثاني", "شارك على فيسبوك", "إعلان", "تابعونا على تيليغرام",
           "تعليقات"],
}

LANGUAGES = sorted(PARAGRAPHS)
