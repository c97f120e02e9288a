<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Plausibility checks with matches(): postcode, IBAN, mail, flags i and x. -->
  <xsl:template match="/adressen">
    <pruefung>
      <xsl:for-each select="adresse">
        <xsl:variable name="iban" select="upper-case(replace(iban, '\s', ''))"/>
        <a id="{@id}"
           plz="{matches(ort, '^\d{5}\s')}"
           iban-de="{matches($iban, '^DE\d{20}$')}"
           iban-format="{matches(iban, '^[a-z]{2}\d{2}( ?[0-9a-z]{4})*( ?[0-9a-z]{1,4})?$', 'i')}"
           mail="{matches(mail, '^[\w.+-]+@[\w-]+(\.[\w-]+)+$')}"
           mail-muenchen="{matches(mail, 'muenchen\.de$', 'i')}"
           hausnr="{matches(strasse, '
               \s \d+ [a-z]? (-\d+)? \s* $ ', 'x')}"
           umlaut="{matches(strasse, '[äöüß]')}"
           kategorie="{matches(ort, '\p{Lu}\p{Ll}+$')}"/>
      </xsl:for-each>
    </pruefung>
  </xsl:template>
</xsl:stylesheet>
